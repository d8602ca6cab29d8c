"""In-person appointments (نوبت‌دهی حضوری), over gateway/requests/appointments.py: free slots
for anyone to see; booking, cancelling and moving one by tracking code; generating slots from
the offices' hours for operators and the 137 centre.

A citizen acts by tracking code: without credentials the last four digits of the mobile number
the request was registered with are needed too (a wrong pair reads as an unknown code); the
citizen portal, partner apps and 137 operators, who act for the citizen with their own key,
may leave them out.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Self

import strawberry
from strawberry.permission import BasePermission

from gateway.access.principals import PrincipalKind
from gateway.context import Info
from gateway.errors import BadUserInput, Forbidden, NotFound
from gateway.guards.cost import typical_size
from gateway.guards.ratelimit import client_address
from gateway.inquiries.tracking import parse_tracking_code
from gateway.inquiries.workdays import Workweek
from gateway.requests import appointments, lookup, search
from gateway.requests.records import DATABASE, load_service
from gateway.schema.mutation import change
from gateway.schema.node import from_global_id, to_global_id
from identifiers import InvalidIdentifier

SLOT_TYPE = "AppointmentSlot"
# The 137 centre's department, which runs the appointments with the operators.
CONTACT_CENTRE = "contact137"


@strawberry.type(description="A time at a region office for an in-person service (نوبت).")
class AppointmentSlot:
    pk: strawberry.Private[int]
    region: int = strawberry.field(description="The region's number.")
    region_office: str = strawberry.field(description="The region office (دفتر منطقه).")
    service_code: str = strawberry.field(description="The service the slot is for.")
    starts_at: dt.datetime = strawberry.field(description="When it begins.")
    ends_at: dt.datetime = strawberry.field(description="When it ends.")
    free: bool = strawberry.field(description="Whether it is still free to book.")

    @strawberry.field(description="The slot's id, for bookAppointment's slotId.")
    def id(self) -> strawberry.ID:
        return to_global_id(SLOT_TYPE, self.pk)

    @classmethod
    def from_domain(cls, slot: appointments.Slot, service_code: str) -> Self:
        return cls(
            pk=slot.id,
            region=slot.region,
            region_office=slot.region_office,
            service_code=service_code,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            free=slot.free,
        )


@strawberry.type(description="A request's appointment after a booking, move or cancellation.")
class Appointment:
    tracking_code: str = strawberry.field(description="The request's tracking code.")
    slot: AppointmentSlot | None = strawberry.field(
        description="The slot it now holds; null after a cancellation."
    )
    released: AppointmentSlot | None = strawberry.field(
        description="The slot it gave up (moved from, or cancelled), free again."
    )


@strawberry.input(description="Book a free slot for a request (رزرو نوبت).")
class BookAppointmentInput:
    slot_id: strawberry.ID = strawberry.field(description="The slot, as appointmentSlots gave it.")
    tracking_code: str = strawberry.field(description="The request's tracking code (کد پیگیری).")
    mobile_last4: str | None = strawberry.field(
        default=None,
        description="The last four digits of the request's mobile number; needed without "
        "credentials.",
    )


@strawberry.input(description="Move a request's appointment to another free slot.")
class RescheduleAppointmentInput:
    slot_id: strawberry.ID = strawberry.field(description="The new slot.")
    tracking_code: str = strawberry.field(description="The request's tracking code.")
    mobile_last4: str | None = strawberry.field(default=None, description="As for bookAppointment.")


@strawberry.input(description="Cancel a request's appointment (لغو نوبت).")
class CancelAppointmentInput:
    tracking_code: str = strawberry.field(description="The request's tracking code.")
    mobile_last4: str | None = strawberry.field(default=None, description="As for bookAppointment.")


@strawberry.input(description="Make the missing slots of some days at every region office.")
class GenerateAppointmentSlotsInput:
    first_day: dt.date = strawberry.field(description="The first day (Gregorian, ISO 8601).")
    days: int = strawberry.field(
        description=f"How many calendar days, 1 to {appointments.MAX_DAYS}."
    )
    service_codes: list[str] | None = strawberry.field(
        default=None, description="Only these services (default: every in-person service)."
    )


class RunsAppointments(BasePermission):
    """Operators and the 137 centre generate slots."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        principal = info.context.principal
        return bool(
            principal.kind is PrincipalKind.OPERATOR
            or (
                principal.kind is PrincipalKind.DEPARTMENT
                and principal.department == CONTACT_CENTRE
            )
        )

    def on_unauthorized(self) -> None:
        raise Forbidden(
            "Only operators and the 137 centre generate appointment slots.",
            scope="appointments:generate",
        )


def _tracking_code(text: str) -> str:
    try:
        return parse_tracking_code(text)
    except InvalidIdentifier as exc:
        raise BadUserInput(str(exc), field="trackingCode") from None


def _mobile_last4(info: Info, given: str | None) -> str | None:
    """The digits the anonymous public must give; keyed callers act for the citizen.
    Persian and Arabic-Indic digits are accepted, as citizenRequest accepts them."""
    if given is not None:
        return lookup.parse_last4(given)
    if info.context.principal.kind is PrincipalKind.PUBLIC:
        raise BadUserInput(
            "Without credentials, give the last four digits of the request's mobile number.",
            field="mobileLast4",
        )
    return None


async def _may_act(info: Info, code: str, last4: str | None) -> None:
    """NOT_FOUND unless the caller may act on the request: with the mobile's last four digits
    (throttled as citizenRequest is, so that the digits cannot be guessed here instead), or,
    without them, as a keyed caller who sees the request under the row rules (the portal or
    partner app that registered it, the 137 centre, its departments, operators): a partner's
    key does not reach another registrar's citizens."""
    context = info.context
    if last4 is not None:
        throttle = lookup.throttle_for(context.settings)
        await throttle.admit(client_address(context.request.scope), code)
        if await lookup.find_for_citizen(context.databases, code, last4) is None:
            await throttle.failed(code)
            raise NotFound("No citizen request has this tracking code.")
        return
    found = await search.visible(context.databases, context.principal, code)
    if found is None:
        raise NotFound("No citizen request has this tracking code.")


def _slot_id(value: str) -> int:
    type_name, pk = from_global_id(value, field="slotId")
    if type_name != SLOT_TYPE:
        raise BadUserInput("Not an appointment slot's id.", field="slotId")
    return pk


def office_hours(info: Info) -> appointments.OfficeHours:
    settings = info.context.settings
    return appointments.OfficeHours(
        week=Workweek(),  # Saturday to Wednesday; the holiday table is added from the database
        opens=settings.appointment_opens_at,
        closes=settings.appointment_closes_at,
        slot_minutes=settings.appointment_slot_minutes,
    )


async def _appointment(info: Info, booking: appointments.Booking) -> Appointment:
    async with info.context.databases.engine(DATABASE).connect() as connection:
        service = await load_service(connection, id=booking.request.service_id)
    code = service.code if service is not None else ""
    return Appointment(
        tracking_code=booking.request.tracking_code,
        slot=None if booking.slot is None else AppointmentSlot.from_domain(booking.slot, code),
        released=(
            None
            if booking.released is None
            else AppointmentSlot.from_domain(
                appointments.Slot(
                    booking.released.id,
                    booking.released.region,
                    booking.released.region_office,
                    booking.released.service_id,
                    booking.released.starts_at,
                    booking.released.ends_at,
                    None,
                    None,
                ),
                code,
            )
        ),
    )


@strawberry.type
class AppointmentsQuery:
    @strawberry.field(
        description="Free appointment slots of an in-person service starting in [since, until) "
        "(default: from now, for 30 days), earliest first; in one region when given.",
        metadata=typical_size(50),
    )
    async def appointment_slots(
        self,
        info: Info,
        service_code: Annotated[
            str, strawberry.argument(description="The in-person service's code.")
        ],
        region: Annotated[
            int | None, strawberry.argument(description="Only this region's office.")
        ] = None,
        since: Annotated[
            dt.datetime | None,
            strawberry.argument(description="Slots starting from this moment; none: now."),
        ] = None,
        until: Annotated[
            dt.datetime | None,
            strawberry.argument(description="Slots starting before this; none: 30 days on."),
        ] = None,
        first: Annotated[
            int,
            strawberry.argument(
                description=f"The most slots returned, 1 to {appointments.MAX_SLOTS}."
            ),
        ] = 50,
    ) -> list[AppointmentSlot]:
        if not 1 <= first <= appointments.MAX_SLOTS:
            raise BadUserInput(
                f"first must be between 1 and {appointments.MAX_SLOTS}.", field="first"
            )
        now = info.context.wall_clock()
        start = max(since, now) if since is not None else now
        end = until if until is not None else start + dt.timedelta(days=30)
        async with info.context.databases.engine(DATABASE).connect() as connection:
            service = await load_service(connection, code=service_code)
            if service is None:
                raise BadUserInput("No service has this code.", field="serviceCode")
            slots = await appointments.free_slots(
                connection,
                service_id=service.id,
                region=region,
                since=start,
                until=end,
                limit=first,
            )
        return [AppointmentSlot.from_domain(slot, service.code) for slot in slots]


@strawberry.type
class AppointmentsMutation:
    @strawberry.mutation(
        description="Books a free slot for an open request that holds none. CONFLICT when the "
        "slot is already booked (by anyone, even at the same moment) or has begun, or the "
        "request holds a slot already or is closed; NOT_FOUND for an unknown tracking code "
        "(or one whose mobile digits do not match)."
    )
    async def book_appointment(
        self,
        info: Info,
        input: Annotated[BookAppointmentInput, strawberry.argument(description="The booking.")],
    ) -> Appointment:
        slot_id = _slot_id(input.slot_id)
        code = _tracking_code(input.tracking_code)
        last4 = _mobile_last4(info, input.mobile_last4)
        await _may_act(info, code, last4)
        principal = info.context.principal
        async with change(info, DATABASE) as unit:
            booking = await appointments.book(
                info.context.databases.engine(DATABASE),
                slot_id=slot_id,
                tracking_code=code,
                mobile_last4=last4,
                actor_kind=principal.kind.value,
                actor=principal.label,
                now=info.context.wall_clock(),
            )
            unit.audit("appointments.book", "CitizenRequest", booking.request.id)
        return await _appointment(info, booking)

    @strawberry.mutation(
        description="Moves a request's appointment to another free slot: it ends with the new "
        "slot, or (CONFLICT) with the old one."
    )
    async def reschedule_appointment(
        self,
        info: Info,
        input: Annotated[RescheduleAppointmentInput, strawberry.argument(description="The move.")],
    ) -> Appointment:
        slot_id = _slot_id(input.slot_id)
        code = _tracking_code(input.tracking_code)
        last4 = _mobile_last4(info, input.mobile_last4)
        await _may_act(info, code, last4)
        principal = info.context.principal
        async with change(info, DATABASE) as unit:
            booking = await appointments.reschedule(
                info.context.databases.engine(DATABASE),
                slot_id=slot_id,
                tracking_code=code,
                mobile_last4=last4,
                actor_kind=principal.kind.value,
                actor=principal.label,
                now=info.context.wall_clock(),
            )
            unit.audit("appointments.reschedule", "CitizenRequest", booking.request.id)
        return await _appointment(info, booking)

    @strawberry.mutation(
        description="Cancels a request's appointment; the slot is free again. CONFLICT when "
        "it holds none or the appointment has begun."
    )
    async def cancel_appointment(
        self,
        info: Info,
        input: Annotated[
            CancelAppointmentInput, strawberry.argument(description="The cancellation.")
        ],
    ) -> Appointment:
        code = _tracking_code(input.tracking_code)
        last4 = _mobile_last4(info, input.mobile_last4)
        await _may_act(info, code, last4)
        principal = info.context.principal
        async with change(info, DATABASE) as unit:
            booking = await appointments.cancel(
                info.context.databases.engine(DATABASE),
                tracking_code=code,
                mobile_last4=last4,
                actor_kind=principal.kind.value,
                actor=principal.label,
                now=info.context.wall_clock(),
            )
            unit.audit("appointments.cancel", "CitizenRequest", booking.request.id)
        return await _appointment(info, booking)

    @strawberry.mutation(
        description="Makes the missing slots of `days` days from firstDay at every region "
        "office, for each in-person service enabled in its region, from the offices' hours "
        "(GATEWAY_APPOINTMENT_*), skipping Thursdays, Fridays and the holiday table's days. "
        "Returns how many were made; existing slots are kept. Operators and the 137 centre.",
        permission_classes=[RunsAppointments],
    )
    async def generate_appointment_slots(
        self,
        info: Info,
        input: Annotated[
            GenerateAppointmentSlotsInput, strawberry.argument(description="What to generate.")
        ],
    ) -> int:
        async with change(info, DATABASE) as unit:
            made = await appointments.generate_slots(
                await unit.session.connection(),
                office_hours(info),
                input.first_day,
                input.days,
                service_codes=input.service_codes,
            )
            unit.audit("appointments.generate", "AppointmentSlot", input.first_day.isoformat())
        return made
