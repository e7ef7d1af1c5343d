"""Small builders for test data, going through the services like the product does."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from divide_support.accounts import service as accounts
from divide_support.core.actor import Actor, Role
from divide_support.core.closures import closed_day_reason
from divide_support.people import service as people
from divide_support.people.models import ContactPreference, Resident, Supporter, SupporterAffiliation
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Course, CourseTopic, Session, SessionKind, Venue, VenueKind

# The zone of every test municipality (and of the demo's), defined once for the tests.
TOKYO = ZoneInfo("Asia/Tokyo")

_counter = {"n": 0}


def _next() -> int:
    _counter["n"] += 1
    return _counter["n"]


async def venue(actor: Actor, capacity: int | None = 40, name: str | None = None) -> Venue:
    return await scheduling.create_venue(actor=actor, name=name or f"中央公民館{_next()}",
                                         kind=VenueKind.COMMUNITY_CENTRE,
                                         address="平塚市浅間町1-1", capacity=capacity, has_wifi=True)


async def course(actor: Actor, topic: CourseTopic = CourseTopic.DEVICE_BASICS) -> Course:
    return await scheduling.create_course(actor=actor, title=f"はじめてのスマホ{_next()}",
                                          topic=topic, duration_minutes=120)


async def session(
    actor: Actor,
    starts_at: datetime,
    *,
    hours: float = 2,
    capacity: int | None = 10,
    kind: SessionKind = SessionKind.CLASS,
    venue_obj: Venue | None = None,
    required_supporters: int | None = None,
) -> Session:
    place = venue_obj or await venue(actor)
    course_obj = await course(actor) if kind == SessionKind.CLASS else None
    [created] = await scheduling.schedule_sessions(
        actor=actor, kind=kind, venue_id=place.id, course_id=course_obj.id if course_obj else None,
        starts_at=starts_at, ends_at=starts_at + timedelta(hours=hours), capacity=capacity,
        required_supporters=required_supporters,
    )
    return created


async def resident(
    actor: Actor,
    family: str = "山田",
    given: str | None = None,
    *,
    sms: bool = False,
    phone: str | None = None,
    **extra,
) -> Resident:
    number = _next()
    fields = people.ResidentFields(
        # a reading of their own: one shared reading and birth year would make the residents
        # possible duplicates of each other
        family_name=family, given_name=given or f"花子{number}", kana=extra.pop("kana", f"ヤマダ ハナコ{number}"),
        phone=phone or (f"090-{1000 + number % 9000:04d}-{number % 10000:04d}" if sms else None),
        contact_preference=ContactPreference.SMS if sms else ContactPreference.PHONE_CALL,
        sms_consent=sms, **extra,
    )
    return await people.create_resident(fields=fields, actor=actor)


async def supporter(actor: Actor, *, certified: bool = True, name: str | None = None) -> Supporter:
    return await people.create_supporter(
        actor=actor, display_name=name or f"支援員{_next()}",
        affiliation=SupporterAffiliation.CARRIER_SHOP, certified=certified, skills=["iPhone"])


async def supporter_login(town, email: str = "sato@example.jp", name: str = "佐藤 健",
                          phone: str = "090-5555-6666", **kwargs) -> tuple[Supporter, str]:
    """A supporter with a SUPPORTER login of their own, and that login's token."""
    from conftest import PASSWORD

    person = await people.create_supporter(
        actor=town.coordinator, display_name=name, affiliation=SupporterAffiliation.CARRIER_SHOP,
        phone=phone, certified=True, **kwargs)
    await accounts.create_user(email=email, role=Role.SUPPORTER,
                               municipality_code=town.municipality.code, password=PASSWORD,
                               supporter_id=person.id)
    token = (await accounts.login(email=email, password=PASSWORD)).token
    return person, token


def ordinary_weeks_from(first: date, weeks: int) -> date:
    """The first day on or after `first` whose `weeks` weekly dates are none of them a
    holiday or in the year-end closure: for tests of a weekly series that are not about
    closed days, whatever day they run on."""
    while any(closed_day_reason(first + timedelta(weeks=w)) for w in range(weeks)):
        first += timedelta(days=1)
    return first


def at(days: float = 0, hour: int | None = None, minutes: int = 0) -> datetime:
    """A time relative to now (UTC), optionally at a local (Tokyo) hour on that day."""
    moment = datetime.now(UTC) + timedelta(days=days)
    if hour is not None:
        local = moment.astimezone(TOKYO).replace(
            hour=hour, minute=minutes, second=0, microsecond=0)
        moment = local.astimezone(UTC)
    return moment
