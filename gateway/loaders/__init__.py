"""Per-request data loaders: every relation is one batched statement, whatever the row count."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar, overload

from aiodataloader import DataLoader

from connectors.agencies import Agencies
from db.engines import Databases
from gateway import dues, parcels
from gateway.access.audit import AuditRecordRow
from gateway.access.keys import KeyInfo
from gateway.access.principals import Principal
from gateway.inquiries.records import Inquiry, InquiryCheck
from gateway.loaders import access, inquiries
from gateway.loaders import requests as citizen_requests
from gateway.loaders.agencies import DeedsByPlate
from gateway.loaders.batching import AgencyLoader, GroupLoader, RecordByKey, RecordsByKey
from gateway.loaders.planning import (
    BUILDING_BY_ID,
    BUILDINGS_BY_PARCEL,
    CERTIFICATE_BY_ID,
    CERTIFICATES_BY_PARCEL,
    DISTRICT_BY_ID,
    OWNERS_BY_PARCEL,
    PARCEL_BY_ID,
    PARCEL_BY_PLATE,
    PARCEL_BY_RENEWAL_CODE,
    PARCELS_BY_OWNER,
    PERMIT_BY_ID,
    PERMITS_BY_PARCEL,
    PERSON_BY_ID,
    PERSON_BY_NATIONAL_CODE,
    REGION_BY_ID,
    VIOLATION_BY_ID,
    VIOLATIONS_BY_PARCEL,
)
from gateway.loaders.revenue import PAYMENT_BY_REFERENCE, DuesByRenewalCode
from gateway.requests.records import CitizenRequest, HistoryEntry, Reply

T = TypeVar("T")


class per_request(Generic[T]):
    """functools.cached_property without its lock: Python 3.11's takes a lock shared by every
    instance on each first read, a visible share of a small request that touches a few
    loaders (the lock is gone in 3.12). A request's loaders are built for one request, and
    read by its own tasks on one event loop."""

    def __init__(self, function: Callable[[Any], T]) -> None:
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.function(instance)
        return value


class Loaders:
    """Built fresh for every request (aiodataloader binds the running loop on creation);
    each loader is created on first use, so a query pays only for what it touches."""

    def __init__(self, databases: Databases, agencies: Agencies, principal: Principal) -> None:
        self.planning = databases.planning
        self.revenue = databases.revenue
        self.gateway = databases.gateway
        self.contact = databases.engine("contact")
        self.agencies = agencies
        self.principal = principal
        self._groups: dict[DataLoader[Any, Any], GroupLoader] = {}

    def grouped(self, loader: DataLoader[Any, Any]) -> GroupLoader:
        """Groups of keys loaded through `loader`'s batch function (see GroupLoader)."""
        group = self._groups.get(loader)
        if group is None:
            group = self._groups[loader] = GroupLoader(loader.batch_load_fn)
        return group

    def release(self) -> None:
        """Lets go of everything loaded: the request has been answered. graphql-core's
        executor refers to itself (and so to the context and these loaders) in a cycle that
        only the garbage collector frees, and it runs rarely (gateway/edge/app.py); emptied
        here, the records loaded go as soon as the answer has left."""
        for loader in (*vars(self).values(), *self._groups.values()):
            if isinstance(loader, DataLoader):
                loader.clear_all()
        self._groups.clear()

    @per_request
    def parcel_by_id(self) -> RecordByKey[parcels.Parcel]:
        return RecordByKey(self.planning, PARCEL_BY_ID)

    @per_request
    def parcel_by_renewal_code(self) -> RecordByKey[parcels.Parcel]:
        return RecordByKey(self.planning, PARCEL_BY_RENEWAL_CODE)

    @per_request
    def parcel_by_plate(self) -> RecordByKey[parcels.Parcel]:
        return RecordByKey(self.planning, PARCEL_BY_PLATE)

    @per_request
    def person_by_id(self) -> RecordByKey[parcels.Person]:
        return RecordByKey(self.planning, PERSON_BY_ID)

    @per_request
    def person_by_national_code(self) -> RecordByKey[parcels.Person]:
        return RecordByKey(self.planning, PERSON_BY_NATIONAL_CODE)

    @per_request
    def region_by_id(self) -> RecordByKey[parcels.Region]:
        return RecordByKey(self.planning, REGION_BY_ID)

    @per_request
    def district_by_id(self) -> RecordByKey[parcels.District]:
        return RecordByKey(self.planning, DISTRICT_BY_ID)

    @per_request
    def owners_by_parcel(self) -> RecordsByKey[parcels.Ownership]:
        return RecordsByKey(self.planning, OWNERS_BY_PARCEL)

    @per_request
    def parcels_by_owner(self) -> RecordsByKey[parcels.Parcel]:
        return RecordsByKey(self.planning, PARCELS_BY_OWNER)

    @per_request
    def buildings_by_parcel(self) -> RecordsByKey[parcels.Building]:
        return RecordsByKey(self.planning, BUILDINGS_BY_PARCEL)

    @per_request
    def permits_by_parcel(self) -> RecordsByKey[parcels.Permit]:
        return RecordsByKey(self.planning, PERMITS_BY_PARCEL)

    @per_request
    def certificates_by_parcel(self) -> RecordsByKey[parcels.Certificate]:
        return RecordsByKey(self.planning, CERTIFICATES_BY_PARCEL)

    @per_request
    def violations_by_parcel(self) -> RecordsByKey[parcels.Violation]:
        return RecordsByKey(self.planning, VIOLATIONS_BY_PARCEL)

    @per_request
    def building_by_id(self) -> RecordByKey[parcels.Building]:
        return RecordByKey(self.planning, BUILDING_BY_ID)

    @per_request
    def permit_by_id(self) -> RecordByKey[parcels.Permit]:
        return RecordByKey(self.planning, PERMIT_BY_ID)

    @per_request
    def certificate_by_id(self) -> RecordByKey[parcels.Certificate]:
        return RecordByKey(self.planning, CERTIFICATE_BY_ID)

    @per_request
    def violation_by_id(self) -> RecordByKey[parcels.Violation]:
        return RecordByKey(self.planning, VIOLATION_BY_ID)

    @per_request
    def dues_by_renewal_code(self) -> DuesByRenewalCode:
        return DuesByRenewalCode(self.revenue)

    @per_request
    def payment_by_reference(self) -> RecordByKey[dues.RecordedPayment]:
        return RecordByKey(self.revenue, PAYMENT_BY_REFERENCE)

    @per_request
    def deed_by_plate(self) -> DeedsByPlate:
        return DeedsByPlate(self.agencies.land_registry)

    @per_request
    def civil_record(self) -> AgencyLoader:
        return AgencyLoader(self.agencies.civil_registry.person)

    @per_request
    def postal_address(self) -> AgencyLoader:
        return AgencyLoader(self.agencies.postal.address)

    @per_request
    def bank_payment(self) -> AgencyLoader:
        return AgencyLoader(self.agencies.bank.verify_payment)

    # Records under a row-level rule: the statement carries this principal's condition.
    @per_request
    def api_key_by_id(self) -> RecordByKey[KeyInfo]:
        return access.api_key_by_id(self.gateway, self.principal)

    @per_request
    def audit_record_by_id(self) -> RecordByKey[AuditRecordRow]:
        return access.audit_record_by_id(self.gateway, self.principal)

    @per_request
    def inquiry_by_id(self) -> RecordByKey[Inquiry]:
        return inquiries.inquiry_by_id(self.gateway, self.principal)

    @per_request
    def inquiry_by_tracking_code(self) -> RecordByKey[Inquiry]:
        return inquiries.inquiry_by_tracking_code(self.gateway, self.principal)

    @per_request
    def check_by_id(self) -> RecordByKey[InquiryCheck]:
        return inquiries.check_by_id(self.gateway, self.principal)

    @per_request
    def checks_by_inquiry(self) -> RecordsByKey[InquiryCheck]:
        return inquiries.checks_by_inquiry(self.gateway)

    # Citizen requests (gateway/loaders/requests.py): by id and tracking code under their
    # row rule; their history, replies and services; the requests about a parcel.
    @per_request
    def citizen_request_by_id(self) -> RecordByKey[CitizenRequest]:
        return citizen_requests.citizen_request_by_id(self.contact, self.principal)

    @per_request
    def citizen_request_by_tracking_code(self) -> RecordByKey[CitizenRequest]:
        return citizen_requests.citizen_request_by_tracking_code(self.contact, self.principal)

    @per_request
    def citizen_request_history(self) -> RecordsByKey[HistoryEntry]:
        return citizen_requests.history_by_request(self.contact)

    @per_request
    def citizen_request_replies(self) -> RecordsByKey[Reply]:
        return citizen_requests.replies_by_request(self.contact)

    @per_request
    def service_by_id(self) -> citizen_requests.ServiceById:
        return citizen_requests.ServiceById(self.contact)

    @per_request
    def citizen_requests_about_parcel(self) -> citizen_requests.RequestsAboutParcel:
        return citizen_requests.RequestsAboutParcel(self.contact)

    @per_request
    def citizen_request_duplicates(self) -> citizen_requests.PossibleDuplicates:
        return citizen_requests.PossibleDuplicates(self.contact, self.principal)
