"""The printed pages: what they say, who may print them. Staff only (ADMIN, COORDINATOR):
the schedule shows seats left and the slip a resident's name, so printing a slip is audited."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4, A5
from reportlab.lib.units import mm

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.calendar import service as calendar
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import DomainError
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.paper.errors import PaperCode
from divide_support.paper.layout import BODY_PT, document, measure_lines
from divide_support.people import service as people
from divide_support.scheduling.errors import SchedulingCode
from divide_support.scheduling.models import (
    Registration,
    RegistrationStatus,
    Session,
    SessionStatus,
    Venue,
)
from divide_support.scheduling.staffing import staffing_for

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True)
class PrintedFile:
    filename: str
    content: bytes


def parse_month(text: str, field: str = "month") -> date:
    """'2027-04' -> the first day of that month."""
    found = _MONTH.fullmatch(text.strip())
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2000:
        raise DomainError(PaperCode.INVALID_MONTH, "月は 2027-04 の形で指定してください。", field,
                          message_en="Give the month as 2027-04.")
    return date(int(found.group(1)), int(found.group(2)), 1)


def _span(session: Session, tz: str) -> str:
    zone = ZoneInfo(tz)
    start, end = session.starts_at.astimezone(zone), session.ends_at.astimezone(zone)
    return f"{timeutil.format_day(start.date())} {start:%H:%M}〜{end:%H:%M}"


def _contact(municipality: Municipality) -> str:
    phone = f" 電話 {municipality.phone}" if municipality.phone else ""
    return f"{municipality.name}{phone}"


def _seats_line(session: Session, seats_left: int | None, today: date) -> str:
    as_of = f"（{timeutil.format_day(today)}現在）"
    if seats_left is None:
        return "予約はいりません。当日、会場へお越しください。"
    if seats_left == 0:
        return f"満席です。キャンセル待ちを受け付けます{as_of}"
    return f"残り {seats_left} 席{as_of}"


async def monthly_schedule(*, actor: Actor, venue_id: int, month: date) -> PrintedFile:
    """A4, large print: every class and help session at the venue that month, with seats
    left at printing time and how to apply."""
    require_staff(actor)
    venue = await get_scoped(Venue, venue_id, actor, what="会場", field="venue_id")
    municipality = await Municipality.get(id=actor.municipality_id)
    zone = ZoneInfo(municipality.timezone)
    first = datetime.combine(month.replace(day=1), time(), zone)
    following = datetime.combine((first + timedelta(days=32)).date().replace(day=1), time(),
                                 zone)
    sessions = await (Session.filter(municipality_id=actor.municipality_id, venue_id=venue.id,
                                     starts_at__gte=first, starts_at__lt=following)
                      .exclude(status=SessionStatus.CANCELLED)
                      .prefetch_related("course").order_by("starts_at", "id"))
    staffing = await staffing_for(actor.municipality_id, [s.id for s in sessions])
    today = timeutil.local_date(timeutil.now(), municipality.timezone)

    title = f"{venue.name} {month.year}年{month.month}月の予定"
    buffer, canvas, pages = document(title, A4, 18 * mm)
    page = next(pages)
    page.text(f"{municipality.name} スマホ教室・スマホ相談会", 16)
    page.text(title, 24, gap=0.5)
    if venue.address:
        page.text(f"会場：{calendar.location(venue)}")
    page.rule()
    if not sessions:
        page.text("この月の予定はありません。", 16)
    for session in sessions:
        seats = staffing[session.id].seats_left if session.id in staffing else None
        lines = [(_span(session, municipality.timezone), 18),
                 (f"{calendar.programme(session)}「{session.title}」", 16),
                 (f"持ち物：{calendar.what_to_bring(session.course)}", BODY_PT),
                 (_seats_line(session, seats, today), BODY_PT)]
        if page.room() < measure_lines(lines, page.text_width) + 40 * mm:
            page = next(pages)
            page.text(f"{title}（つづき）", 16)
            page.rule()
        for text, size in lines:
            page.text(text, size)
        page.rule(2 * mm)
    page.y -= 4 * mm
    page.text("お申し込み・お問い合わせ", 16)
    page.text(_contact(municipality), 20)
    page.text(f"{timeutil.format_day(today)}に印刷しました。席の数はそのときのものです。")
    canvas.save()
    return PrintedFile(f"schedule-{month:%Y-%m}.pdf", buffer.getvalue())


async def confirmation_slip(*, actor: Actor, registration_id: int) -> PrintedFile:
    """A5: one resident's seat (or waitlist place), to hand over at the counter, with a QR
    code of their calendar invite."""
    require_staff(actor)
    registration = await get_scoped(Registration, registration_id, actor, what="申込み",
                                    field="registration_id")
    await registration.fetch_related("resident", "session", "session__venue",
                                     "session__course")
    resident, session = registration.resident, registration.session
    people.ensure_not_erased(resident, "registration_id")
    if (registration.status == RegistrationStatus.CANCELLED
            or session.status == SessionStatus.CANCELLED):
        raise DomainError(SchedulingCode.ALREADY_CANCELLED,
                          "この申込み（または回）は取り消されています。確認票は印刷できません。",
                          "registration_id",
                          message_en="This registration or session was cancelled.")
    municipality = await Municipality.get(id=actor.municipality_id)
    venue = session.venue

    buffer, canvas, pages = document("申込み確認票", A5, 12 * mm)
    page = next(pages)
    page.text(f"{municipality.name} {calendar.programme(session)}", BODY_PT)
    page.text("申込み確認票", 22, gap=0.5)
    page.text(f"{resident.family_name} {resident.given_name} 様", 18)
    page.rule()
    page.text(f"「{session.title}」", 16)
    page.text(f"日時：{_span(session, municipality.timezone)}", 16)
    page.text(f"会場：{calendar.location(venue)}")
    page.text(f"持ち物：{calendar.what_to_bring(session.course)}")
    if registration.status == RegistrationStatus.WAITLISTED:
        page.text(f"キャンセル待ち {registration.waitlist_position} 番目です。"
                  "席が空いたらご連絡します。", 16)
    page.rule()
    page.text("欠席・変更のご連絡", BODY_PT)
    page.text(_contact(municipality), 16)
    qr_size = 32 * mm
    if page.room() < qr_size + 2 * mm:
        page = next(pages)
    page.qr(calendar.invite_url(registration), qr_size, page.margin, page.y - qr_size)
    page.text("スマートフォンで読み取ると、予定をカレンダーに入れられます。", BODY_PT,
              indent=qr_size + 4 * mm)
    canvas.save()
    await audit.record(actor, "registration.slip_printed", "Registration", [registration.id],
                       {"residentId": resident.id})
    return PrintedFile(f"slip-{registration.id}.pdf", buffer.getvalue())
