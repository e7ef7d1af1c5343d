"""Venues and courses: created and corrected by staff, listed for the municipality."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import CoreCode, DomainError
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import NOTES_MAX, clean_text, required_text
from divide_support.people.models import Device
from divide_support.scheduling._common import MAX_SESSION_HOURS, _non_negative
from divide_support.scheduling.errors import SchedulingCode
from divide_support.scheduling.models import Course, CourseLevel, CourseTopic, Session, SessionStatus, Venue, VenueKind

_UNSET: Any = object()


def _clean_venue_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise a venue's fields that were given; raises the first problem."""
    clean: dict[str, Any] = {}
    if "name" in values:
        clean["name"] = required_text(values["name"], "name", "会場名", 200)
    if "kind" in values:
        if values["kind"] is None:
            raise DomainError(CoreCode.REQUIRED, "会場の種類を選んでください。", "kind",
                              message_en="kind cannot be null.")
        clean["kind"] = values["kind"]
    if "address" in values:
        clean["address"] = clean_text(values["address"], "address", "住所", 300)
    if "capacity" in values:
        _non_negative(values["capacity"], "capacity", "収容人数", minimum=1)
        clean["capacity"] = values["capacity"]
    if "has_wifi" in values:
        clean["has_wifi"] = bool(values["has_wifi"])
    if "loaner_devices" in values:
        _non_negative(values["loaner_devices"], "loaner_devices", "貸出端末数")
        clean["loaner_devices"] = values["loaner_devices"] or 0
    if "accessibility_notes" in values:
        clean["accessibility_notes"] = clean_text(
            values["accessibility_notes"], "accessibility_notes", "バリアフリー情報", NOTES_MAX,
            multiline=True)
    return clean


def _duplicate(field: str, what: str) -> DomainError:
    return DomainError(SchedulingCode.DUPLICATE, f"同じ名前の{what}が既にあります。", field,
                       message_en=f"A {field} like this already exists.")


async def create_venue(
    *,
    actor: Actor,
    name: str,
    kind: VenueKind,
    address: str | None = None,
    capacity: int | None = None,
    has_wifi: bool = False,
    loaner_devices: int | None = 0,
    accessibility_notes: str | None = None,
) -> Venue:
    require_staff(actor)
    clean = _clean_venue_fields({
        "name": name, "kind": kind, "address": address, "capacity": capacity,
        "has_wifi": has_wifi, "loaner_devices": loaner_devices,
        "accessibility_notes": accessibility_notes})
    if await Venue.filter(municipality_id=actor.municipality_id, name=clean["name"]).exists():
        raise _duplicate("name", "会場")
    try:
        async with in_transaction():
            venue = await Venue.create(municipality_id=actor.municipality_id, **clean)
            await audit.record(actor, "venue.create", "Venue", [venue.id])
    except IntegrityError as error:  # the same name saved by a colleague a moment ago
        raise _duplicate("name", "会場") from error
    return venue


async def update_venue(
    *,
    actor: Actor,
    venue_id: int,
    name: Any = _UNSET,
    kind: Any = _UNSET,
    address: Any = _UNSET,
    capacity: Any = _UNSET,
    has_wifi: Any = _UNSET,
    loaner_devices: Any = _UNSET,
    accessibility_notes: Any = _UNSET,
) -> Venue:
    """Staff: correct a venue (a new room, Wi-Fi installed). The room's capacity (収容人数)
    cannot go below the capacity of a coming session there: reschedule that one first."""
    require_staff(actor)
    given = {k: v for k, v in {
        "name": name, "kind": kind, "address": address, "capacity": capacity,
        "has_wifi": has_wifi, "loaner_devices": loaner_devices,
        "accessibility_notes": accessibility_notes}.items() if v is not _UNSET}
    clean = _clean_venue_fields(given)
    try:
        async with in_transaction():
            venue = await get_scoped(Venue, venue_id, actor, what="会場",
                                     field="venue_id", for_update=True)
            if "name" in clean and clean["name"] != venue.name and await Venue.filter(
                    municipality_id=actor.municipality_id, name=clean["name"]).exists():
                raise _duplicate("name", "会場")
            if clean.get("capacity") is not None:
                largest = await Session.filter(
                    venue_id=venue.id, status=SessionStatus.SCHEDULED,
                    ends_at__gt=timeutil.now(), capacity__gt=clean["capacity"]
                ).order_by("-capacity").first()
                if largest is not None:
                    raise DomainError(
                        SchedulingCode.CAPACITY_BELOW_SESSIONS,
                        f"この会場には定員{largest.capacity}人の回が予定されています。"
                        "先にその回の定員を変更してください。",
                        "capacity",
                        message_en=f"A coming session here has {largest.capacity} places; "
                                   "change its capacity first.")
            changed = sorted(k for k, v in clean.items() if getattr(venue, k) != v)
            for key, value in clean.items():
                setattr(venue, key, value)
            if changed:
                await venue.save(update_fields=changed)
            await audit.record(actor, "venue.update", "Venue", [venue.id],
                               {"fields": changed})
    except IntegrityError as error:
        raise _duplicate("name", "会場") from error
    return venue


async def create_course(
    *,
    actor: Actor,
    title: str,
    topic: CourseTopic,
    duration_minutes: int,
    description: str | None = None,
    target_device: Device | None = None,
    level: CourseLevel | None = None,
) -> Course:
    """A course of the municipality's programme; BASIC (基本的な講座) unless told."""
    require_staff(actor)
    level = level or CourseLevel.BASIC
    clean_title = required_text(title, "title", "講座名", 200)
    clean_description = clean_text(description, "description", "説明", NOTES_MAX, multiline=True)
    if not 15 <= duration_minutes <= MAX_SESSION_HOURS * 60:
        raise DomainError(CoreCode.BAD_USER_INPUT, "講座の時間は15分から12時間の間で入力してください。",
                          "duration_minutes",
                          message_en="durationMinutes must be between 15 and 720.")
    if await Course.filter(municipality_id=actor.municipality_id, title=clean_title).exists():
        raise _duplicate("title", "講座")
    try:
        async with in_transaction():
            course = await Course.create(
                municipality_id=actor.municipality_id, title=clean_title, topic=topic, level=level,
                description=clean_description, target_device=target_device,
                duration_minutes=duration_minutes,
            )
            await audit.record(actor, "course.create", "Course", [course.id])
    except IntegrityError as error:
        raise _duplicate("title", "講座") from error
    return course


def venues_query(actor: Actor):
    return Venue.filter(municipality_id=actor.municipality_id).order_by("name", "id")


def courses_query(actor: Actor):
    return Course.filter(municipality_id=actor.municipality_id).order_by("level", "topic", "id")
