"""What an automated call says (slow, plain Japanese), and the TwiML that says it.

The words are built at planning from the same facts as the SMS (templates.MessageFacts) and
kept on the message (`voice_script`), so staff read exactly what was said. A call says the
organisation, the date with its weekday, the time, the venue and what to bring, repeats it
once and reads the centre's number digit by digit. A person is then asked for a key: 1 they
will come, 2 they give up the seat, 9 to hear it again. An answering machine gets the whole
message and is asked nothing.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from twilio.twiml.voice_response import Gather, Say, VoiceResponse

from divide_support.messaging.models import MessageKind
from divide_support.messaging.templates import BRING_BASIC, BRING_MY_NUMBER, MY_NUMBER_TOPICS, MessageFacts

LANGUAGE = "ja-JP"
VOICE = "Polly.Mizuki"  # Amazon Polly's Japanese voice, served by Twilio
RATE = "slow"
WEEKDAYS = "月火水木金土日"
# Read one by one, as a person reads a number aloud; 4 and 7 and 9 in their unambiguous
# readings (ヨン, ナナ, キュウ), and the separators as の.
DIGIT_WORDS = {"0": "ゼロ", "1": "イチ", "2": "ニ", "3": "サン", "4": "ヨン", "5": "ゴ",
               "6": "ロク", "7": "ナナ", "8": "ハチ", "9": "キュウ"}
SEPARATORS = "-‐－ー ()（）"
REPEAT = "もう一度、申し上げます。"
MENU = ("ご参加いただける場合は、1を。参加を取りやめる場合は、2を。"
        "もう一度お聞きになる場合は、9を、押してください。")
GOODBYE = "お電話ありがとうございました。"
KEY_CONFIRMED = "ありがとうございます。当日、お待ちしております。"
KEY_GAVE_UP = "お申し込みを、取り消しました。ご連絡ありがとうございました。"
KEY_NOT_ACTIVE = "このお申し込みは、すでに取り消されているか、受付が終わっています。"
KEY_UNKNOWN = "もう一度、お願いします。"
GATHER_SECONDS = 8


def spoken_digits(phone: str) -> str:
    """'0463-21-1234' -> 'ゼロ、ヨン、ロク、サン、の、ニ、イチ、の、イチ、ニ、サン、ヨン'."""
    words: list[str] = []
    for character in phone.strip():
        if character in DIGIT_WORDS:
            words.append(DIGIT_WORDS[character])
        elif character in SEPARATORS and words and words[-1] != "の":
            words.append("の")
    while words and words[-1] == "の":
        words.pop()
    return "、".join(words)


def spoken_date(facts: MessageFacts) -> str:
    local = facts.starts_at.astimezone(ZoneInfo(facts.timezone))
    noon = "午前" if local.hour < 12 else "午後"
    hour = local.hour % 12  # 12:30 is 午後0時30分, never 午後12時 (heard as midnight)
    minutes = f"{local.minute}分" if local.minute else ""
    return (f"{local.month}月{local.day}日、{WEEKDAYS[local.weekday()]}曜日、"
            f"{noon}{hour}時{minutes}から")


def contact_sentence(centre_phone: str | None) -> str:
    if not centre_phone:
        return "ご不明な点は、窓口までお問い合わせください。"
    return f"ご不明な点は、{spoken_digits(centre_phone)}、までお電話ください。"


def voice_script(kind: MessageKind, facts: MessageFacts) -> str | None:
    """The words of a call about `kind` (a seat's confirmation or the day-before reminder);
    None for a waitlist place (staff phone those: the keys are about a seat)."""
    if facts.waitlist_position:
        return None
    programme = "スマホ教室" if facts.is_class else "スマホ相談会"
    bring = BRING_MY_NUMBER if facts.course_topic in MY_NUMBER_TOPICS else BRING_BASIC
    # The full name: a shared home phone often has two of the same family name.
    opening = (f"こちらは、{facts.municipality_name}の、{programme}です。"
               f"{facts.family_name}、{facts.given_name}様、")
    what = f"{spoken_date(facts)}、{facts.venue_name}で、「{facts.title}」があります。"
    if kind == MessageKind.CONFIRMATION:
        body = f"お申し込みを、受け付けました。{what}{bring.replace('・', '、')}を、お持ちください。"
    else:
        body = f"ご予約のお知らせです。{what}{bring.replace('・', '、')}を、お持ちください。"
    return opening + body + contact_sentence(facts.centre_phone)


def _say(text: str) -> Say:
    say = Say(language=LANGUAGE, voice=VOICE)
    say.prosody(text, rate=RATE)
    return say


def for_person(script: str, gather_url: str) -> str:
    """A person answered: the message, once more, then the keys."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=gather_url, method="POST", timeout=GATHER_SECONDS,
                    action_on_empty_result=False)
    gather.append(_say(script))
    gather.pause(length=1)
    gather.append(_say(REPEAT + script))
    gather.append(_say(MENU))
    response.append(gather)
    response.append(_say(GOODBYE))
    response.hangup()
    return str(response)


def for_machine(script: str) -> str:
    """An answering machine: the whole message, twice, and nothing asked."""
    response = VoiceResponse()
    response.append(_say(script))
    response.pause(length=1)
    response.append(_say(REPEAT + script))
    response.append(_say(GOODBYE))
    response.hangup()
    return str(response)


def answer(text: str, *, ask_again_url: str | None = None) -> str:
    """What the call says after a key; with `ask_again_url`, the keys are asked again."""
    response = VoiceResponse()
    if ask_again_url is not None:
        gather = Gather(num_digits=1, action=ask_again_url, method="POST",
                        timeout=GATHER_SECONDS, action_on_empty_result=False)
        gather.append(_say(text + MENU))
        response.append(gather)
    else:
        response.append(_say(text))
    response.append(_say(GOODBYE))
    response.hangup()
    return str(response)


def goodbye() -> str:
    response = VoiceResponse()
    response.append(_say(GOODBYE))
    response.hangup()
    return str(response)


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def is_machine(answered_by: str | None) -> bool:
    """Twilio's AnsweredBy: machine_start, machine_end_beep/_silence/_other (a fax is no
    machine that keeps a message: `is_fax`)."""
    return bool(answered_by) and answered_by.startswith("machine")


def is_fax(answered_by: str | None) -> bool:
    return answered_by == "fax"
