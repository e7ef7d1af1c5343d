"""Messaging's service functions, in one place for the areas that hand messages down and
for the API, the CLI and the tests: `from divide_support.messaging import service as
messaging`. The rules live beside it, one module a job:

- eligibility.py: who can get an SMS right now (people's one rule), and why not in words
- channels.py: which way a message goes (SMS or an automated call), the one rule
- voice.py, calls.py: what a call says (TwiML), and the keys a resident presses
- timing.py: quiet hours, the moments of reminders and follow-up messages
- planning.py: the outbox rows for what the areas hand down (`Occasion`, `plan`), withdrawn
  when they no longer apply, revived when the resident can be reached again
- consent.py: consent and opt-out, by staff or by a reply
- replies.py: replies stored, keywords acted on, staff's review
- outbox.py: the staff's view of the outbox: messages, who to phone instead, SMS usage
- resend.py: a failed message tried again
- rights.py: erasure of a resident's messages and replies, unattributed replies purged

Beside them: the dispatcher (dispatcher.py) sends, webhooks.py takes the provider's calls.
The modules never import this one; callers look names up here when they call.
"""

from __future__ import annotations

from divide_support.messaging.consent import (
    opt_out_by_phone,
    set_call_consent,
    set_opt_out,
    set_sms_consent,
)
from divide_support.messaging.eligibility import ELIGIBILITY_REASONS, SKIP_REASON_TEXT, skip_reason_for
from divide_support.messaging.outbox import (
    CALL_OUTCOME_TEXT,
    SMS_USAGE_MAX_MONTHS,
    call_usage,
    messages_query,
    reasons_to_phone,
    sms_usage,
)
from divide_support.messaging.planning import (
    Occasion,
    cancel_for_follow_up,
    cancel_for_registration,
    cancel_for_session,
    plan,
    revive_for_resident,
)
from divide_support.messaging.replies import (
    HELP_WORDS,
    MUNICIPALITY_CODE,
    START_WORDS,
    STOP_WISH,
    STOP_WORDS,
    classify_reply,
    mark_reply_reviewed,
    municipality_for_reply,
    receive_reply,
    replies_query,
    reply_text,
)
from divide_support.messaging.resend import resend
from divide_support.messaging.rights import (
    ERASED_BODY,
    UNATTRIBUTED_REPLY_DAYS,
    erase_for_resident,
    purge_unattributed_replies,
)
from divide_support.messaging.timing import (
    DAY_BEFORE_AT,
    FOLLOW_UP_AT,
    REMINDER_KINDS,
    SAME_DAY_LEAD,
    after_quiet_hours,
    at_local,
    follow_up_moment,
    in_quiet_hours,
    quiet_hours,
    reminder_moments,
)

__all__ = [
    "CALL_OUTCOME_TEXT", "DAY_BEFORE_AT",
    "ELIGIBILITY_REASONS",
    "ERASED_BODY",
    "FOLLOW_UP_AT",
    "HELP_WORDS",
    "MUNICIPALITY_CODE",
    "REMINDER_KINDS",
    "SAME_DAY_LEAD",
    "SKIP_REASON_TEXT",
    "SMS_USAGE_MAX_MONTHS",
    "START_WORDS",
    "STOP_WISH",
    "STOP_WORDS",
    "UNATTRIBUTED_REPLY_DAYS",
    "Occasion",
    "after_quiet_hours",
    "at_local",
    "call_usage",
    "cancel_for_follow_up",
    "cancel_for_registration",
    "cancel_for_session",
    "classify_reply",
    "erase_for_resident",
    "follow_up_moment",
    "in_quiet_hours",
    "mark_reply_reviewed",
    "messages_query",
    "municipality_for_reply",
    "opt_out_by_phone",
    "plan",
    "purge_unattributed_replies",
    "quiet_hours",
    "reasons_to_phone",
    "receive_reply",
    "reminder_moments",
    "replies_query",
    "reply_text",
    "resend",
    "revive_for_resident",
    "set_call_consent",
    "set_opt_out",
    "set_sms_consent",
    "skip_reason_for",
    "sms_usage",
]
