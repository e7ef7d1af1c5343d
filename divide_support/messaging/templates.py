"""Message bodies: short, plain Japanese for older readers, complete without a link.

Each body names the organisation and the centre's phone number, and nothing personal
beyond the resident's name. Long venue or course names are shortened (…) so that a
reminder fits one UCS-2 segment where possible and no message ever exceeds two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from divide_support.core.timeutil import format_local
from divide_support.messaging.models import MessageKind
from divide_support.messaging.segments import count_segments, max_units

MAX_SEGMENTS = 2
# Reminders aim at one segment: cheaper, and never split on older handsets.
TARGET_SEGMENTS = {MessageKind.REMINDER_DAY_BEFORE: 1, MessageKind.REMINDER_SAME_DAY: 1}
# Shortened names stay recognisable first; only if that cannot fit do they go further.
READABLE_CHARS = 8
MIN_NAME_CHARS = 4
ELLIPSIS = "…"
BRING_BASIC = "スマホと充電器"
BRING_MY_NUMBER = "スマホ・充電器・マイナンバーカード"
MY_NUMBER_TOPICS = {"MY_NUMBER_CARD"}


@dataclass(frozen=True)
class MessageFacts:
    """What a body may say. Built by the planner from the rows at planning time."""

    municipality_name: str
    centre_phone: str | None
    timezone: str
    is_class: bool
    title: str
    venue_name: str
    starts_at: datetime
    family_name: str
    given_name: str
    course_topic: str | None = None
    waitlist_position: int | None = None


def when(value: datetime, tz: str) -> str:
    return format_local(value, tz)


def clock(value: datetime, tz: str) -> str:
    return f"{value.astimezone(ZoneInfo(tz)):%H:%M}"


def _shorten(text: str, length: int) -> str:
    if len(text) <= length:
        return text
    return text[: max(1, length - 1)] + ELLIPSIS


def _units(body: str) -> int:
    return count_segments(body).units


def _fit(render: Callable[[dict[str, str]], str], values: dict[str, str],
         shrinkable: list[str], limit: int, shortest: int) -> str:
    """Shorten the shrinkable values, in order, until the body fits `limit` units."""
    values = dict(values)
    body = render(values)
    for key in shrinkable:
        while _units(body) > limit and len(values[key]) > shortest:
            excess = _units(body) - limit
            values[key] = _shorten(values[key], max(shortest, len(values[key]) - excess))
            body = render(values)
    return body


def _person(facts: MessageFacts) -> str:
    return f"{facts.family_name} {facts.given_name}様"


def _templates(kind: MessageKind, facts: MessageFacts) -> list[Callable[[dict[str, str]], str]]:
    """Variants from the friendliest to the leanest; the first that fits wins."""
    phone = facts.centre_phone
    ask = (lambda v: f"変更・欠席は {phone} へ。") if phone else (lambda v: "")
    ask_short = (lambda v: f"欠席は{phone}") if phone else (lambda v: "")
    bring = BRING_MY_NUMBER if facts.course_topic in MY_NUMBER_TOPICS else BRING_BASIC

    if kind == MessageKind.CONFIRMATION and facts.waitlist_position:
        n = facts.waitlist_position
        return [
            lambda v: (f"【{v['org']}】{v['person']} {v['when']}〜「{v['title']}」は"
                       f"キャンセル待ち{n}番目で受け付けました。席が空いたらお知らせします。"
                       + (f"問合せ {phone}" if phone else "")),
            lambda v: (f"【{v['org']}】{v['when']}〜「{v['title']}」キャンセル待ち{n}番目で受付。"
                       + (f"問合せ{phone}" if phone else "")),
        ]
    if kind == MessageKind.CONFIRMATION:
        return [
            lambda v: (f"【{v['org']}】{v['person']} {v['when']}〜 {v['venue']}で「{v['title']}」"
                       f"があります。{bring}をお持ちください。" + ask(v)),
            lambda v: (f"【{v['org']}】{v['when']}〜 {v['venue']}「{v['title']}」受付済。"
                       f"{bring}持参。" + ask_short(v)),
        ]
    if kind == MessageKind.REMINDER_DAY_BEFORE:
        return [
            lambda v: (f"【{v['short_org']}】明日{v['when']}〜 {v['venue']}「{v['title']}」。"
                       f"{bring}をお持ちください。" + ask_short(v)),
            lambda v: (f"【{v['short_org']}】明日{v['when']}〜 {v['venue']}「{v['title']}」{bring}持参。"
                       + ask_short(v)),
        ]
    if kind == MessageKind.REMINDER_SAME_DAY:
        return [
            lambda v: (f"【{v['short_org']}】本日{v['clock']}〜 {v['venue']}「{v['title']}」。"
                       "お気をつけてお越しください。" + ask_short(v)),
            lambda v: f"【{v['short_org']}】本日{v['clock']}〜 {v['venue']}「{v['title']}」。" + ask_short(v),
        ]
    if kind == MessageKind.WAITLIST_PROMOTED:
        return [
            lambda v: (f"【{v['org']}】{v['person']} キャンセル待ちの{v['when']}〜「{v['title']}」に"
                       f"参加できます。{v['venue']}へお越しください。" + ask(v)),
            lambda v: (f"【{v['org']}】{v['when']}〜「{v['title']}」に参加できます。{v['venue']}。"
                       + ask_short(v)),
        ]
    if kind == MessageKind.SESSION_CHANGED:
        return [
            lambda v: (f"【{v['org']}】{v['person']}「{v['title']}」の日時・会場が変わりました。"
                       f"新しい日時 {v['when']}〜 会場 {v['venue']}。" + ask(v)),
            lambda v: (f"【{v['org']}】「{v['title']}」変更:{v['when']}〜 {v['venue']}。"
                       + ask_short(v)),
        ]
    if kind == MessageKind.SESSION_CANCELLED:
        return [
            lambda v: (f"【{v['org']}】{v['person']} {v['when']}〜「{v['title']}」は中止になりました。"
                       "申し訳ありません。" + (f"問合せ {phone}" if phone else "")),
            lambda v: (f"【{v['org']}】{v['when']}〜「{v['title']}」は中止です。"
                       + (f"問合せ{phone}" if phone else "")),
        ]
    if kind == MessageKind.FOLLOW_UP:
        return [
            lambda v: (f"【{v['org']}】{v['person']} 先日は「{v['title']}」へのご参加ありがとうございました。"
                       "その後お困りのことがあれば" + (f" {phone} " if phone else "窓口") + "へご相談ください。"),
            lambda v: (f"【{v['org']}】先日はご参加ありがとうございました。お困りのことは"
                       + (f"{phone}へ" if phone else "窓口へ")),
        ]
    raise ValueError(kind)


def render(kind: MessageKind, facts: MessageFacts) -> str:
    """The body for `kind`: within the target segments when possible, never over two."""
    programme = "スマホ教室" if facts.is_class else "スマホ相談会"
    values = {
        "org": f"{facts.municipality_name}{programme}",
        "short_org": facts.municipality_name,
        "person": _person(facts),
        "when": when(facts.starts_at, facts.timezone),
        "clock": clock(facts.starts_at, facts.timezone),
        "venue": facts.venue_name,
        "title": facts.title,
    }
    shrinkable = ["venue", "title", "person", "org", "short_org"]
    variants = _templates(kind, facts)
    target = max_units(TARGET_SEGMENTS.get(kind, MAX_SEGMENTS))
    ceiling = max_units(MAX_SEGMENTS)
    # Cheapest readable message first: full names in the target, then readable shortenings,
    # then a second segment, and only then names cut short.
    attempts = [(target, len("".join(values.values()))), (target, READABLE_CHARS),
                (ceiling, READABLE_CHARS), (ceiling, MIN_NAME_CHARS)]
    for limit, shortest in attempts:
        for variant in variants:
            body = _fit(variant, values, shrinkable, limit, shortest)
            if _units(body) <= limit:
                return body
    # Unreachable with the field limits the services enforce; stay within two segments.
    return variants[-1](values)[: max_units(MAX_SEGMENTS)]
