"""What scheduling tells residents by SMS, and whom staff phone instead.

Scheduling owns seats and sessions, so it decides what a message is about (who, which
occasion, the facts its words need) and hands that to messaging, which stores, times, sends
and settles it. Whether a planned message still applies when it is about to go is answered
here too (`_gone`, registered with messaging's `occasions` when this package is imported).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from divide_support.accounts.models import Municipality
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.messaging import occasions
from divide_support.messaging import service as messaging
from divide_support.messaging.models import Message, MessageKind
from divide_support.messaging.service import REMINDER_KINDS, Occasion
from divide_support.messaging.templates import MessageFacts
from divide_support.people.models import Resident
from divide_support.scheduling.models import (
    ACTIVE_STATUSES,
    Course,
    Registration,
    RegistrationStatus,
    Session,
    SessionKind,
    SessionStatus,
    Venue,
)

# --- what a message about a session says -------------------------------------------------


def facts(session: Session, venue: Venue, course: Course | None, resident: Resident,
          municipality: Municipality, waitlist_position: int | None = None) -> MessageFacts:
    """The facts a message about `session` may say to `resident`."""
    return MessageFacts(
        municipality_name=municipality.name, centre_phone=municipality.phone,
        timezone=municipality.timezone, is_class=session.kind == SessionKind.CLASS,
        title=session.title, venue_name=venue.name, starts_at=session.starts_at,
        family_name=resident.family_name, given_name=resident.given_name,
        course_topic=str(course.topic) if course else None,
        waitlist_position=waitlist_position,
    )


async def _surroundings(session: Session) -> tuple[Venue, Course | None, Municipality]:
    """The session's venue, course (None for a drop-in) and municipality, in one statement."""
    row = await Session.filter(id=session.id).select_related(
        "venue", "course", "municipality").get()
    return row.venue, row.course, row.municipality


def _about_seat(registration: Registration, session: Session, resident: Resident,
                municipality: Municipality, words: MessageFacts, kind: MessageKind,
                moment, expires_at) -> Occasion:
    # At most one message per (registration, kind, session sequence).
    return Occasion(kind=kind, key=f"reg:{registration.id}:{kind}:{session.sequence}",
                    resident=resident, municipality=municipality, facts=words, moment=moment,
                    expires_at=expires_at, session_id=session.id,
                    session_sequence=session.sequence, registration_id=registration.id)


def _reminders(registration: Registration, session: Session, resident: Resident,
               municipality: Municipality, words: MessageFacts) -> list[Occasion]:
    return [_about_seat(registration, session, resident, municipality, words, kind, moment,
                        expires_at)
            for kind, (moment, expires_at)
            in messaging.reminder_moments(session.starts_at, municipality.timezone).items()]


# --- planning ------------------------------------------------------------------------------

async def plan_registration(registration: Registration, *, promoted: bool = False,
                            resident: Resident | None = None) -> None:
    """A new seat or waitlist place (or a promotion): confirmation now, reminders later.
    Nothing for people entered at the door or from paper sheets: they are already there.
    `resident` is the registration's, when the caller has just read it."""
    session = await Session.filter(id=registration.session_id).select_related(
        "venue", "course", "municipality").get()
    now = timeutil.now()
    if session.starts_at <= now:
        return
    if resident is None or resident.id != registration.resident_id:
        resident = await Resident.get(id=registration.resident_id)
    municipality = session.municipality
    waiting = registration.status == RegistrationStatus.WAITLISTED
    words = facts(session, session.venue, session.course, resident, municipality,
                  registration.waitlist_position if waiting else None)
    kind = MessageKind.WAITLIST_PROMOTED if promoted else MessageKind.CONFIRMATION
    occasions = [_about_seat(registration, session, resident, municipality, words, kind, now,
                             session.starts_at)]
    if not waiting:
        occasions += _reminders(registration, session, resident, municipality, words)
    await messaging.plan(occasions)


async def active_registrations(session: Session) -> list[Registration]:
    """Everyone holding a seat or a waitlist place, in the order they registered."""
    return await Registration.filter(session_id=session.id,
                                     status__in=ACTIVE_STATUSES).order_by("id")


async def _notify_holders(session: Session, kind: MessageKind, *, replan_reminders: bool
                          ) -> None:
    """`kind` to everyone holding a seat or waitlist place; new reminders for the seats."""
    if session.starts_at <= timeutil.now():
        return
    venue, course, municipality = await _surroundings(session)
    holders = await active_registrations(session)
    residents = {r.id: r for r in await Resident.filter(
        id__in={registration.resident_id for registration in holders})}
    occasions: list[Occasion] = []
    for registration in holders:
        resident = residents[registration.resident_id]
        words = facts(session, venue, course, resident, municipality)
        occasions.append(_about_seat(registration, session, resident, municipality, words,
                                     kind, timeutil.now(), session.starts_at))
        if replan_reminders and registration.status == RegistrationStatus.CONFIRMED:
            occasions += _reminders(registration, session, resident, municipality, words)
    await messaging.plan(occasions)


async def plan_session_changed(session: Session) -> None:
    """The session moved (time or venue): tell everyone holding a seat or a waitlist place,
    and re-plan the reminders for the new time. Old unsent messages would say the old time."""
    await messaging.cancel_for_session(session.id, before_sequence=session.sequence)
    await _notify_holders(session, MessageKind.SESSION_CHANGED, replan_reminders=True)


async def plan_session_cancelled(session: Session) -> None:
    await messaging.cancel_for_session(session.id)
    await _notify_holders(session, MessageKind.SESSION_CANCELLED, replan_reminders=False)


# --- at send time: does it still apply? ----------------------------------------------------

async def _gone(messages: Sequence[Message]) -> dict[int, str]:
    """Messages about a seat or a session that no longer apply, with why: the seat was given
    up, the session was cancelled or moved since the message was planned."""
    registrations = {r.id: r for r in await Registration.filter(
        id__in={m.registration_id for m in messages if m.registration_id})}
    sessions = {s.id: s for s in await Session.filter(
        id__in={m.session_id for m in messages if m.session_id})}
    reasons: dict[int, str] = {}
    for message in messages:
        kind = MessageKind(message.kind)
        session = sessions.get(message.session_id) if message.session_id else None
        if session is not None:
            if message.session_sequence is not None and message.session_sequence != session.sequence:
                reasons[message.id] = "session changed since planned"
                continue
            if session.status == SessionStatus.CANCELLED and kind != MessageKind.SESSION_CANCELLED:
                reasons[message.id] = "session cancelled"
                continue
        # A follow-up's message is the follow-up's to answer for (followups.notices).
        registration = registrations.get(message.registration_id) \
            if message.registration_id and kind != MessageKind.FOLLOW_UP else None
        if registration is not None:
            if registration.status == RegistrationStatus.CANCELLED \
                    and kind != MessageKind.SESSION_CANCELLED:
                reasons[message.id] = "registration cancelled"
            elif kind in (*REMINDER_KINDS, MessageKind.WAITLIST_PROMOTED) \
                    and registration.status != RegistrationStatus.CONFIRMED:
                reasons[message.id] = "no seat"
    return reasons


occasions.register("scheduling", _gone)



# --- whom to phone instead -----------------------------------------------------------------

async def residents_to_phone(*, actor: Actor, session_id: int) -> list[tuple[Registration, str]]:
    """Everyone holding a seat or waitlist place whom SMS will not reach, with why:
    staff phone these people instead."""
    require_staff(actor)
    session = await get_scoped(Session, session_id, actor, what="開催回", field="session_id")
    return await _phone_instead([session.id])


async def residents_to_phone_soon(*, actor: Actor, days: int, venue_id: int | None = None
                                  ) -> list[tuple[Registration, str]]:
    """The same list for every scheduled session of the next `days` days (at one venue):
    the counter's "whom to phone" list, soonest session first."""
    require_staff(actor)
    now = timeutil.now()
    sessions = Session.filter(municipality_id=actor.municipality_id,
                              status=SessionStatus.SCHEDULED, starts_at__gte=now,
                              starts_at__lt=now + timedelta(days=days))
    if venue_id is not None:
        sessions = sessions.filter(venue_id=venue_id)
    session_ids = await sessions.order_by("starts_at", "id").values_list("id", flat=True)
    return await _phone_instead(list(session_ids))


async def _phone_instead(session_ids: list[int]) -> list[tuple[Registration, str]]:
    """Whom SMS will not reach among the seats and waitlist places of these sessions (in
    their order): the reason it is skipped, or the provider's failure."""
    if not session_ids:
        return []
    order = {session_id: index for index, session_id in enumerate(session_ids)}
    registrations = sorted(await Registration.filter(
        session_id__in=session_ids, status__in=ACTIVE_STATUSES,
    ).order_by("id"), key=lambda registration: order[registration.session_id])
    cancelled = set(await Session.filter(id__in=session_ids, status=SessionStatus.CANCELLED
                                         ).values_list("id", flat=True))
    reasons = await _phone_reasons(
        [r for r in registrations if r.session_id not in cancelled])
    if cancelled:  # they are told by SMS only: an automated call says no cancellation
        reasons |= await _phone_reasons(
            [r for r in registrations if r.session_id in cancelled],
            about=MessageKind.SESSION_CANCELLED)
    return [(r, reasons[r.id]) for r in registrations if r.id in reasons]


async def _phone_reasons(registrations: list[Registration], *,
                         about: MessageKind = MessageKind.REMINDER_DAY_BEFORE
                         ) -> dict[int, str]:
    if not registrations:
        return {}
    return await messaging.reasons_to_phone([(r.id, r.resident_id) for r in registrations],
                                            about=about)


@dataclass(frozen=True)
class NoticePreview:
    """How many residents a change to a session would tell, by SMS and by a staff call."""

    by_sms: int
    by_phone: int


async def notice_preview(*, actor: Actor, session_id: int, capacity: int | None = None
                         ) -> NoticePreview:
    """Before staff confirm a change, whom it tells. A change of time or venue, or a
    cancellation, tells everyone holding a seat or waitlist place (plan_session_changed,
    plan_session_cancelled); a new `capacity` alone tells only the waitlisted residents it
    would seat (WAITLIST_PROMOTED). Those SMS will not reach (residentsToPhone's rule) are
    the phone list. A session that has started tells nobody: people are at the door."""
    require_staff(actor)
    session = await get_scoped(Session, session_id, actor, what="開催回", field="session_id")
    if session.starts_at <= timeutil.now() or session.status == SessionStatus.CANCELLED:
        return NoticePreview(by_sms=0, by_phone=0)
    holders = await active_registrations(session)
    if capacity is not None:
        confirmed = sum(1 for r in holders if r.status == RegistrationStatus.CONFIRMED)
        waiting = sorted((r for r in holders if r.status == RegistrationStatus.WAITLISTED),
                         key=lambda r: (r.waitlist_position or 0, r.id))
        holders = waiting[:max(0, capacity - confirmed)]
    # What this change sends is a change, a cancellation or a promotion: SMS, never a call.
    by_phone = len(await _phone_reasons(holders, about=MessageKind.SESSION_CHANGED))
    return NoticePreview(by_sms=len(holders) - by_phone, by_phone=by_phone)
