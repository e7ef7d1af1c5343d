"""Who can get an SMS right now, and the words staff read for why not."""

from __future__ import annotations

from divide_support.messaging.models import SkipReason
from divide_support.people.models import Resident
from divide_support.people.service import why_no_sms

ELIGIBILITY_REASONS = (SkipReason.NO_CONSENT, SkipReason.NO_MOBILE,
                       SkipReason.PREFERS_OTHER_CHANNEL, SkipReason.OPTED_OUT)

SKIP_REASON_TEXT = {
    SkipReason.NO_CONSENT: "SMSの同意がありません",
    SkipReason.NO_MOBILE: "携帯電話番号が登録されていません",
    SkipReason.PREFERS_OTHER_CHANNEL: "SMS以外の連絡方法を希望しています",
    SkipReason.OPTED_OUT: "SMSの配信停止を希望しています",
    SkipReason.TOO_LATE: "送信時刻を過ぎたため送りませんでした",
}


def skip_reason_for(resident: Resident) -> SkipReason | None:
    """Why this resident cannot get an SMS right now, or None (people's one rule). Read at
    planning and again just before sending, so a later opt-out always wins."""
    reason = why_no_sms(resident)
    return SkipReason(reason) if reason is not None else None
