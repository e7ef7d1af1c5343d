"""The SMS a follow-up plans (a word on its due date), and whether it still applies."""

from __future__ import annotations

from collections.abc import Sequence

from divide_support.accounts.models import Municipality
from divide_support.core import timeutil
from divide_support.followups.links import links
from divide_support.followups.models import FollowUp, FollowUpChannel, FollowUpStatus
from divide_support.messaging import occasions
from divide_support.messaging import service as messaging
from divide_support.messaging.models import Message, MessageKind
from divide_support.messaging.templates import MessageFacts
from divide_support.people.models import Resident


async def plan_follow_up(follow_up: FollowUp) -> None:
    """An open follow-up on the SMS channel: a message on its due date, 10:00 local."""
    if follow_up.channel != FollowUpChannel.SMS or follow_up.status != FollowUpStatus.OPEN:
        return
    resident = await Resident.get(id=follow_up.resident_id)
    municipality = await Municipality.get(id=follow_up.municipality_id)
    words = None
    if follow_up.registration_id is not None or follow_up.visit_id is not None:
        words = await links().facts(registration_id=follow_up.registration_id,
                                    visit_id=follow_up.visit_id, resident=resident,
                                    municipality=municipality)
    if words is None:
        words = MessageFacts(
            municipality_name=municipality.name, centre_phone=municipality.phone,
            timezone=municipality.timezone, is_class=False, title="スマホ相談会",
            venue_name="", starts_at=timeutil.now(), family_name=resident.family_name,
            given_name=resident.given_name)
    await messaging.plan([messaging.Occasion(
        kind=MessageKind.FOLLOW_UP, key=f"followup:{follow_up.id}", resident=resident,
        municipality=municipality, facts=words,
        moment=messaging.follow_up_moment(follow_up.due_on, municipality.timezone),
        expires_at=None, registration_id=follow_up.registration_id,
        follow_up_id=follow_up.id)])


async def _gone(messages: Sequence[Message]) -> dict[int, str]:
    """Messages about a follow-up that was closed (done or called off) since."""
    follow_ups = {f.id: f for f in await FollowUp.filter(
        id__in={m.follow_up_id for m in messages if m.follow_up_id})}
    return {message.id: "follow-up closed" for message in messages
            if message.follow_up_id in follow_ups
            and follow_ups[message.follow_up_id].status != FollowUpStatus.OPEN}


occasions.register("followups", _gone)
