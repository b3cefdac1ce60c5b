"""WSDL 1.1 documents of the simulated services, generated from soap.OPERATIONS.

Why generated: the operation table is the single description of what the simulator
serves; the WSDL (document/literal, one SOAP 1.1 and one SOAP 1.2 port per service) is a
rendering of it that standard toolkits (zeep, .NET, SoapUI) can load and call. Every
field is `xs:string`: OpenTrack's values (yyyyMMdd dates, `0` for empty) are text on the
wire, and the pipeline keeps them verbatim.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from dealer_feed.simulator.soap import OT_NS, SERVICES, TR_NS, OperationSpec


def _strings(names: tuple[str, ...], min_occurs: str = "0") -> str:
    return "".join(f'<xs:element name="{n}" type="xs:string" minOccurs="{min_occurs}"/>' for n in names)


def _transitional_schema(ops: tuple[OperationSpec, ...]) -> str:
    result_types = {op.result_type: op.fields for op in ops}
    types = "".join(
        f'<xs:complexType name="{name}Result"><xs:sequence>{_strings(fields)}'
        + ('<xs:element name="Options" type="t:ArrayOfOption" minOccurs="0"/>' if name == "Vehicle" else "")
        + "</xs:sequence></xs:complexType>"
        for name, fields in result_types.items()
    )
    result_sets = "".join(
        f'<xs:complexType name="{op.name}ResultSet"><xs:sequence>'
        '<xs:element name="AccessWindow" type="t:AccessWindow" minOccurs="0"/>'
        f'<xs:element name="Result" type="t:{op.result_type}Result" minOccurs="0" maxOccurs="unbounded"/>'
        '<xs:element name="Errors" type="t:ArrayOfError" minOccurs="0"/>'
        f'</xs:sequence></xs:complexType><xs:element name="{op.name}Result" type="t:{op.name}ResultSet"/>'
        for op in ops
    )
    return (
        f'<xs:schema targetNamespace="{TR_NS}" elementFormDefault="qualified">'
        '<xs:complexType name="AccessWindow"><xs:sequence>'
        f"{_strings(('Method', 'AccessBegins', 'AccessEnds'))}</xs:sequence></xs:complexType>"
        f'<xs:complexType name="Error"><xs:sequence>{_strings(("Code", "Message"))}</xs:sequence></xs:complexType>'
        '<xs:complexType name="ArrayOfError"><xs:sequence>'
        '<xs:element name="Error" type="t:Error" minOccurs="0" maxOccurs="unbounded"/></xs:sequence></xs:complexType>'
        f'<xs:complexType name="Option"><xs:sequence>{_strings(("Code", "Description"))}</xs:sequence></xs:complexType>'
        '<xs:complexType name="ArrayOfOption"><xs:sequence>'
        '<xs:element name="Option" type="t:Option" minOccurs="0" maxOccurs="unbounded"/></xs:sequence></xs:complexType>'
        f"{types}{result_sets}</xs:schema>"
    )


def _request_schema(ops: tuple[OperationSpec, ...]) -> str:
    elements = []
    for op in ops:
        params = []
        for name, children in op.params:
            if children:
                elements.append(f'<xs:complexType name="{op.name}{name}"><xs:sequence>{_strings(children)}'
                                "</xs:sequence></xs:complexType>")
                params.append(f'<xs:element name="{name}" type="tns:{op.name}{name}" minOccurs="0"/>')
            else:
                params.append(f'<xs:element name="{name}" type="xs:string" minOccurs="0"/>')
        elements.append(
            f'<xs:element name="{op.name}"><xs:complexType><xs:sequence>'
            f'<xs:element name="Dealer" type="tns:Dealer"/>{"".join(params)}</xs:sequence></xs:complexType></xs:element>'
            f'<xs:element name="{op.name}Response"><xs:complexType><xs:sequence>'
            f'<xs:element ref="t:{op.name}Result" minOccurs="0"/></xs:sequence></xs:complexType></xs:element>'
        )
    return (
        f'<xs:schema targetNamespace="{OT_NS}" elementFormDefault="qualified">'
        f'<xs:import namespace="{TR_NS}"/>'
        f'<xs:complexType name="Dealer"><xs:sequence>{_strings(("EnterpriseCode", "CompanyNumber"), "1")}'
        f"{_strings(('ServerName',))}</xs:sequence></xs:complexType>"
        f"{''.join(elements)}</xs:schema>"
    )


def wsdl_document(service: str, location: str) -> bytes:
    """The WSDL of `service` (e.g. `VehicleAPI`) whose ports point at `location`."""
    ops = SERVICES[service]
    messages = "".join(
        f'<wsdl:message name="{op.name}SoapIn"><wsdl:part name="parameters" element="tns:{op.name}"/></wsdl:message>'
        f'<wsdl:message name="{op.name}SoapOut"><wsdl:part name="parameters" element="tns:{op.name}Response"/>'
        "</wsdl:message>"
        for op in ops
    )
    port_type = "".join(
        f'<wsdl:operation name="{op.name}"><wsdl:input message="tns:{op.name}SoapIn"/>'
        f'<wsdl:output message="tns:{op.name}SoapOut"/></wsdl:operation>'
        for op in ops
    )

    def binding(prefix: str, name: str) -> str:
        operations = "".join(
            f'<wsdl:operation name="{op.name}"><{prefix}:operation soapAction="{OT_NS}/{op.name}" style="document"/>'
            f'<wsdl:input><{prefix}:body use="literal"/></wsdl:input>'
            f'<wsdl:output><{prefix}:body use="literal"/></wsdl:output></wsdl:operation>'
            for op in ops
        )
        return (f'<wsdl:binding name="{name}" type="tns:{service}Soap">'
                f'<{prefix}:binding transport="http://schemas.xmlsoap.org/soap/http"/>{operations}</wsdl:binding>')

    where = quoteattr(location)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
        'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" '
        f'xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{OT_NS}" xmlns:t="{TR_NS}" '
        f'targetNamespace="{OT_NS}" name="{service}">'
        f"<wsdl:types>{_transitional_schema(ops)}{_request_schema(ops)}</wsdl:types>"
        f'{messages}<wsdl:portType name="{service}Soap">{port_type}</wsdl:portType>'
        f'{binding("soap", f"{service}Soap")}{binding("soap12", f"{service}Soap12")}'
        f'<wsdl:service name="{service}">'
        f'<wsdl:port name="{service}Soap" binding="tns:{service}Soap"><soap:address location={where}/></wsdl:port>'
        f'<wsdl:port name="{service}Soap12" binding="tns:{service}Soap12"><soap12:address location={where}/>'
        "</wsdl:port></wsdl:service></wsdl:definitions>"
    ).encode()
