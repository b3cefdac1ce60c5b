"""A standard SOAP toolkit (zeep) loads each service's WSDL and calls it, over both SOAP versions."""

from __future__ import annotations

import pytest
import requests
import zeep
from ot_support import PASSWORD, USERNAME
from zeep.wsse.username import UsernameToken

DEALER = {"EnterpriseCode": "T1", "CompanyNumber": "A1", "ServerName": "itrack1.arkona.com"}
CALLS = {
    "VehicleAPI": ("VehicleInventory", {"LookupParms": {"ToDateInInventory": "2026-11-23T06:00:00Z"}}, "Vehicle"),
    "CustomerAPI": ("CustomerLookup", {"CustomerNumber": "123456"}, "Customer"),
    "ServiceAPI": ("OpenRepairOrderLookup", {"LookupParms": {"CreatedDateTimeEnd": "2026-11-23T06:00:00Z"}},
                   "OpenRepairOrder"),
    "PartsAPI": ("PartsInventory", {"InventoryParms": {"Manufacturer": "KI"}}, "Part"),
}


@pytest.mark.parametrize("service", sorted(CALLS))
@pytest.mark.parametrize("port", ["Soap", "Soap12"])
def test_zeep_loads_wsdl_and_calls(sim, service, port):
    client = zeep.Client(f"{sim.url}{service}.asmx?WSDL", wsse=UsernameToken(USERNAME, PASSWORD))
    operation, params, record = CALLS[service]

    result = getattr(client.bind(service, f"{service}{port}"), operation)(Dealer=DEALER, **params)

    assert result.Errors is None
    assert len(getattr(result, record)) > 0
    assert result.AccessWindow.Method and result.AccessWindow.AccessBegins == "20260101"
    [call] = sim.requests(operation=operation)
    assert call["soap_version"] == ("1.2" if port == "Soap12" else "1.1") and call["outcome"] == "ok"


def test_wsdl_describes_every_operation_and_both_bindings(sim):
    text = requests.get(f"{sim.url}VehicleAPI.asmx?wsdl", timeout=5).text

    for part in ("VehicleInventory", "VehicleLookup", 'soapAction="opentrack.dealertrack.com/VehicleInventory"',
                 "soap12:binding", f'location="{sim.url}VehicleAPI.asmx"'):
        assert part in text


def test_star_wsdl_describes_process_message(sim):
    text = requests.get(f"{sim.url}WebService.asmx?WSDL", timeout=5).text

    for part in ("ProcessMessage", "PayloadManifest", 'soapAction="http://www.starstandards.org/webservices/2005/10/'
                 'transport/operations/ProcessMessage"', f'location="{sim.url}WebService.asmx"'):
        assert part in text
