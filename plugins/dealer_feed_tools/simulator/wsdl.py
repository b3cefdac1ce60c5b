"""WSDL 1.1 documents of the simulated services, generated from soap.OPERATIONS.

Why generated: the operation table is the single description of what the simulator
serves; the WSDL (document/literal, one SOAP 1.1 and one SOAP 1.2 port per service) is a
rendering of it that standard toolkits (zeep, .NET, SoapUI) can load and call. Every
field is `xs:string`: OpenTrack's values (yyyyMMdd dates, `0` for empty) are text on the
wire, and the pipeline keeps them verbatim.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from dealer_feed_tools.simulator.records import REPAIR_ORDER_LINE_FIELDS
from dealer_feed_tools.simulator.soap import OT_NS, SERVICES, STAR_ACTION, STAR_NS, OperationSpec



def _strings(names: tuple[str, ...], min_occurs: str = "0") -> str:
    return "".join(f'<xs:element name="{n}" type="xs:string" minOccurs="{min_occurs}"/>' for n in names)


_NESTED: dict[str, str] = {
    "Vehicle": '<xs:element name="OptionalFields" type="tns:ArrayOfVehicleOptionalField" minOccurs="0"/>'
               '<xs:element name="Options" type="tns:ArrayOfVehicleOption" minOccurs="0"/>',
    "OpenRepairOrder": '<xs:element name="Details" type="tns:ArrayOfOpenRepairOrderDetail" minOccurs="0"/>',
}


def _array(item: str, fields: tuple[str, ...]) -> str:
    return (f'<xs:complexType name="{item}"><xs:sequence>{_strings(fields)}</xs:sequence></xs:complexType>'
            f'<xs:complexType name="ArrayOf{item}"><xs:sequence><xs:element name="{item}" type="tns:{item}" '
            'minOccurs="0" maxOccurs="unbounded"/></xs:sequence></xs:complexType>')


def _record_types(ops: tuple[OperationSpec, ...]) -> str:
    """Record types (named by record, every field xs:string, nested lists typed) and result sets."""
    records = {op.record: op.fields for op in ops}
    types = "".join(
        f'<xs:complexType name="{name}"><xs:sequence>{_strings(fields)}{_NESTED.get(name, "")}'
        "</xs:sequence></xs:complexType>"
        for name, fields in records.items()
    )
    result_sets = "".join(
        f'<xs:complexType name="{op.name}ResultSet"><xs:sequence>'
        '<xs:element name="AccessWindow" type="tns:AccessWindow" minOccurs="0"/>'
        f'<xs:element name="{op.record}" type="tns:{op.record}" minOccurs="0" maxOccurs="unbounded"/>'
        '<xs:element name="Errors" type="tns:ArrayOfError" minOccurs="0"/>'
        "</xs:sequence></xs:complexType>"
        for op in ops
    )
    return (
        '<xs:complexType name="AccessWindow"><xs:sequence>'
        f"{_strings(('Method', 'AccessBegins', 'AccessEnds'))}</xs:sequence></xs:complexType>"
        f"{_array('Error', ('Code', 'Message'))}"
        f"{_array('VehicleOptionalField', ('OptionNumber', 'Description', 'FieldType', 'NumericFieldValue'))}"
        f"{_array('VehicleOption', ('OptionCode', 'Description'))}"
        f"{_array('OpenRepairOrderDetail', REPAIR_ORDER_LINE_FIELDS)}"
        f"{types}{result_sets}"
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
            f'<xs:element name="{op.name}Result" type="tns:{op.name}ResultSet" minOccurs="0"/></xs:sequence>'
            "</xs:complexType></xs:element>"
        )
    return (
        f'<xs:schema targetNamespace="{OT_NS}" elementFormDefault="qualified">{_record_types(ops)}'
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
        f'xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{OT_NS}" '
        f'targetNamespace="{OT_NS}" name="{service}">'
        f"<wsdl:types>{_request_schema(ops)}</wsdl:types>"
        f'{messages}<wsdl:portType name="{service}Soap">{port_type}</wsdl:portType>'
        f'{binding("soap", f"{service}Soap")}{binding("soap12", f"{service}Soap12")}'
        f'<wsdl:service name="{service}">'
        f'<wsdl:port name="{service}Soap" binding="tns:{service}Soap"><soap:address location={where}/></wsdl:port>'
        f'<wsdl:port name="{service}Soap12" binding="tns:{service}Soap12"><soap12:address location={where}/>'
        "</wsdl:port></wsdl:service></wsdl:definitions>"
    ).encode()


def star_wsdl_document(location: str) -> bytes:
    """The STAR transport WSDL of `WebService.asmx`: one ProcessMessage operation whose payload
    content is any element (the OpenTrack request / response), header PayloadManifest."""
    where = quoteattr(location)

    def binding(prefix: str, name: str) -> str:
        return (f'<wsdl:binding name="{name}" type="tns:starTransport">'
                f'<{prefix}:binding transport="http://schemas.xmlsoap.org/soap/http"/>'
                f'<wsdl:operation name="ProcessMessage"><{prefix}:operation soapAction="{STAR_ACTION}" '
                f'style="document"/><wsdl:input><{prefix}:body use="literal"/><{prefix}:header '
                f'message="tns:ProcessMessagePayloadManifest" part="PayloadManifest" use="literal"/></wsdl:input>'
                f'<wsdl:output><{prefix}:body use="literal"/></wsdl:output></wsdl:operation></wsdl:binding>')

    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
        'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" '
        f'xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{STAR_NS}" targetNamespace="{STAR_NS}" '
        'name="WebService"><wsdl:types>'
        f'<xs:schema targetNamespace="{STAR_NS}" elementFormDefault="qualified">'
        '<xs:complexType name="Content"><xs:sequence><xs:any minOccurs="0" processContents="skip"/></xs:sequence>'
        '<xs:attribute name="id" type="xs:string"/></xs:complexType>'
        '<xs:complexType name="Payload"><xs:sequence><xs:element name="content" type="tns:Content" minOccurs="0" '
        'maxOccurs="unbounded"/></xs:sequence></xs:complexType>'
        '<xs:complexType name="Manifest"><xs:attribute name="contentID" type="xs:string"/>'
        '<xs:attribute name="namespaceURI" type="xs:string"/><xs:attribute name="element" type="xs:string"/>'
        '<xs:attribute name="version" type="xs:string"/></xs:complexType>'
        '<xs:element name="PayloadManifest"><xs:complexType><xs:sequence><xs:element name="manifest" '
        'type="tns:Manifest" minOccurs="0" maxOccurs="unbounded"/></xs:sequence></xs:complexType></xs:element>'
        '<xs:element name="ProcessMessage"><xs:complexType><xs:sequence><xs:element name="payload" '
        'type="tns:Payload" minOccurs="0"/></xs:sequence></xs:complexType></xs:element>'
        '<xs:element name="ProcessMessageResponse"><xs:complexType><xs:sequence><xs:element name="payload" '
        'type="tns:Payload" minOccurs="0"/></xs:sequence></xs:complexType></xs:element>'
        "</xs:schema></wsdl:types>"
        '<wsdl:message name="ProcessMessageSoapIn"><wsdl:part name="parameters" element="tns:ProcessMessage"/>'
        '</wsdl:message><wsdl:message name="ProcessMessageSoapOut"><wsdl:part name="parameters" '
        'element="tns:ProcessMessageResponse"/></wsdl:message><wsdl:message name="ProcessMessagePayloadManifest">'
        '<wsdl:part name="PayloadManifest" element="tns:PayloadManifest"/></wsdl:message>'
        '<wsdl:portType name="starTransport"><wsdl:operation name="ProcessMessage">'
        '<wsdl:input message="tns:ProcessMessageSoapIn"/><wsdl:output message="tns:ProcessMessageSoapOut"/>'
        f'</wsdl:operation></wsdl:portType>{binding("soap", "starTransport")}{binding("soap12", "starTransport1")}'
        '<wsdl:service name="WebService">'
        f'<wsdl:port name="starTransport" binding="tns:starTransport"><soap:address location={where}/></wsdl:port>'
        f'<wsdl:port name="starTransport1" binding="tns:starTransport1"><soap12:address location={where}/>'
        "</wsdl:port></wsdl:service></wsdl:definitions>"
    ).encode()
