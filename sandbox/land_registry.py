"""The simulated land registry: deeds by registry plate, over SOAP 1.1 and SOAP 1.2."""

from __future__ import annotations

from lxml import etree

from identifiers import RegistryPlate
from sandbox import wsdl
from sandbox.agency import Payload, SoapAgency, required_text, xs_boolean, xs_decimal
from sandbox.calls import CallLog
from sandbox.chaos import Chaos
from sandbox.dataset import Dataset, Deed
from sandbox.wsse import Credentials, UsernameTokenGuard

NAME = "land_registry"
NAMESPACE = "urn:ir:ssaa:land-registry:v1"
MAX_PLATES = 200  # GetDeeds' limit, enforced by the schema's maxOccurs


class LandRegistry:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.payload = Payload(NAMESPACE)

    async def get_deed(self, request: etree._Element) -> etree._Element:
        plate = _plate(request)
        deeds = await self.dataset.deeds([plate])
        response = self.payload.root("GetDeedResponse")
        self._deed(response, plate, deeds.get(plate))
        return response

    async def get_deeds(self, request: etree._Element) -> etree._Element:
        plates = [_plate(element) for element in request.iterchildren(f"{{{NAMESPACE}}}plate")]
        deeds = await self.dataset.deeds(plates)
        response = self.payload.root("GetDeedsResponse")
        for plate in plates:
            self._deed(response, plate, deeds.get(plate))
        return response

    def _deed(self, parent: etree._Element, plate: RegistryPlate, deed: Deed | None) -> None:
        add = self.payload.add
        element = add(parent, "deed")
        add(element, "found", xs_boolean(deed is not None))
        plate_element = add(element, "plate")
        add(plate_element, "section", str(plate.section))
        add(plate_element, "mainPlate", str(plate.main))
        add(plate_element, "subPlate", str(plate.sub))
        if deed is None:
            return
        add(element, "serial", deed.serial)
        add(element, "issueDate", deed.issued_on.isoformat())
        add(element, "area", xs_decimal(deed.area))
        for owner in deed.owners:
            owner_element = add(element, "owner")
            add(owner_element, "nationalCode", owner.national_code)
            add(owner_element, "firstName", owner.first_name)
            add(owner_element, "lastName", owner.last_name)
            add(owner_element, "share", xs_decimal(owner.share))
        for mortgage in deed.mortgages:
            mortgage_element = add(element, "mortgage")
            add(mortgage_element, "holder", mortgage.holder)
            add(mortgage_element, "amount", str(mortgage.amount))
            add(mortgage_element, "registeredDate", mortgage.registered_on.isoformat())
        for seizure in deed.seizures:
            seizure_element = add(element, "seizure")
            add(seizure_element, "issuer", seizure.issuer)
            add(seizure_element, "reference", seizure.reference)
            add(seizure_element, "seizedDate", seizure.seized_on.isoformat())


def _plate(element: etree._Element) -> RegistryPlate:
    return RegistryPlate(
        section=int(required_text(element, "section")),
        main=int(required_text(element, "mainPlate")),
        sub=int(required_text(element, "subPlate")),
    )


def build(
    dataset: Dataset,
    *,
    credentials: Credentials | None = None,
    chaos: Chaos | None = None,
    calls: CallLog | None = None,
) -> SoapAgency:
    registry = LandRegistry(dataset)
    return SoapAgency(
        NAME,
        wsdl.load(NAME),
        {"GetDeed": registry.get_deed, "GetDeeds": registry.get_deeds},
        UsernameTokenGuard(credentials or Credentials.from_env(NAME), required=True),
        chaos=chaos,
        calls=calls,
    )
