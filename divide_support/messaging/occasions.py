"""Whether a planned message still applies: answered by the area the message is about.

Messaging stores, times, sends and settles messages; it does not know what a seat, a session
or a follow-up is. The areas that hand it messages (scheduling, followups) register a check
here when they are imported (their package's ``__init__``), and messaging asks every check
when a message is claimed, revived or resent, whatever path brought it back to PENDING.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from divide_support.messaging.models import Message

# messages -> {message id: why it no longer applies}, for the messages the check knows about
OccasionCheck = Callable[[Sequence[Message]], Awaitable[dict[int, str]]]

_CHECKS: dict[str, OccasionCheck] = {}


def register(area: str, check: OccasionCheck) -> None:
    """`check` answers for the messages about `area`'s things (registering again replaces)."""
    _CHECKS[area] = check


async def unwanted(messages: Sequence[Message]) -> dict[int, str]:
    """Messages whose occasion is gone, with why (the first check that says so)."""
    reasons: dict[int, str] = {}
    for check in _CHECKS.values():
        rest = [message for message in messages if message.id not in reasons]
        if not rest:
            break
        for message_id, why in (await check(rest)).items():
            reasons.setdefault(message_id, why)
    return reasons


# --- a resident's answer on a call: give up the seat -------------------------------------

# message -> whether what it is about was still held and is now given up (as staff
# cancelling it would: the freed seat goes to the next on the waitlist)
SeatRelease = Callable[[Message], Awaitable[bool]]

_RELEASES: dict[str, SeatRelease] = {}


def register_release(area: str, release: SeatRelease) -> None:
    _RELEASES[area] = release


async def give_up(message: Message) -> bool:
    """The resident pressed 2 on a call about `message`: False when nothing was held any more
    (already cancelled, the session started), and nothing changes."""
    for release in _RELEASES.values():
        if await release(message):
            return True
    return False
