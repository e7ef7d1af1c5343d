"""A realistic demo month for one municipality (`divide-support demo`).

Everything goes through the service functions, acting as the municipality's
system ADMIN, so the demo obeys the same rules as real use (capacity and
waitlist, double booking, attendance only once a session has started, follow-ups
after classes and visits, audit entries). Data is drawn from random.Random(seed),
so the same seed on the same day gives the same demo; which sessions are past
depends on today's date.

The data is made up: names are common Japanese names drawn at random, and phone
numbers only have a valid shape.

Idempotent: a municipality that already has the venue 駅前デジタルステーション is
left alone. The whole demo is one transaction, so a failed run leaves nothing
behind and can simply be repeated.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import DomainError
from divide_support.followups.models import FollowUp
from divide_support.messaging.models import Message, MessageStatus
from divide_support.people import phones
from divide_support.people import service as people
from divide_support.people.models import (
    ContactPreference,
    Device,
    Resident,
    Supporter,
    SupporterAffiliation,
)
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    AssignmentRole,
    Attendance,
    Course,
    CourseLevel,
    CourseTopic,
    Registration,
    RegistrationSource,
    RegistrationStatus,
    Session,
    SessionKind,
    Venue,
    VenueKind,
    VisitOutcome,
)
from divide_support.scheduling.staffing import ATTENDEES_PER_SUPPORTER
from divide_support.seed import load_reference_data

STATION_NAME = "駅前デジタルステーション"
RESIDENT_COUNT = 200
VISIT_COUNT = 40
DAYS_BACK = 14
DAYS_AHEAD = 16
ATTENDANCE_RATE = 0.85


# --- the city ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CityProfile:
    """What differs between the demo cities: addresses, districts, phone exchanges, partners."""

    addresses: dict[str, str]  # venue name -> address
    districts: tuple[str, ...]
    landline_prefixes: tuple[str, ...]  # area code and exchange, e.g. "0463-21"
    shop_area: str  # for shop names like ドコモショップ平塚店
    npo: str
    school: str


PROFILES: dict[str, CityProfile] = {
    "142034": CityProfile(
        addresses={
            "中央公民館": "平塚市追分1-20",
            STATION_NAME: "平塚市宝町1-1",
            "市立図書館": "平塚市浅間町12-41",
            "市役所本庁舎": "平塚市浅間町9-1",
        },
        districts=("崇善", "港", "松原", "旭", "大野"),
        landline_prefixes=("0463-21", "0463-22", "0463-31", "0463-34", "0463-35", "0463-55"),
        shop_area="平塚",
        npo="NPO法人ひらつかシニアネット",
        school="東海大学",
    ),
    "092142": CityProfile(
        addresses={
            "中央公民館": "さくら市氏家1297",
            STATION_NAME: "さくら市桜野1298-1",
            "市立図書館": "さくら市氏家2650",
            "市役所本庁舎": "さくら市氏家2771",
        },
        districts=("氏家", "押上", "熟田", "上松山", "喜連川"),
        landline_prefixes=("028-681", "028-682", "028-685", "028-686"),
        shop_area="さくら氏家",
        npo="NPO法人さくらICTサポート",
        school="栃木県立さくら清修高等学校",
    ),
    "222127": CityProfile(
        addresses={
            "中央公民館": "焼津市本町5-6-1",
            STATION_NAME: "焼津市栄町1-3-1",
            "市立図書館": "焼津市三ケ名1550",
            "市役所本庁舎": "焼津市本町2-16-32",
        },
        districts=("焼津", "小川", "豊田", "大富", "大井川"),
        landline_prefixes=("054-622", "054-623", "054-626", "054-627", "054-628"),
        shop_area="焼津",
        npo="NPO法人やいづICTサポーターズ",
        school="静岡福祉大学",
    ),
    "222259": CityProfile(
        addresses={
            "中央公民館": "伊豆の国市四日町290",
            STATION_NAME: "伊豆の国市南條800-1",
            "市立図書館": "伊豆の国市田京299-6",
            "市役所本庁舎": "伊豆の国市長岡340-1",
        },
        districts=("韮山", "長岡", "大仁", "四日町", "田京"),
        landline_prefixes=("055-945", "055-947", "055-948", "055-949"),
        shop_area="伊豆長岡",
        npo="NPO法人いずのくにデジタル応援団",
        school="静岡県立韮山高等学校",
    ),
}


def _generic_profile(municipality: Municipality) -> CityProfile:
    """For a municipality without a hand-written profile: plausible, clearly generic data."""
    name = municipality.name
    exchange = "-".join((municipality.phone or "").split("-")[:2])
    prefixes = (exchange,) if exchange.count("-") == 1 else ("03-3581",)
    return CityProfile(
        addresses={
            "中央公民館": f"{name}中央1-1",
            STATION_NAME: f"{name}駅前2-3",
            "市立図書館": f"{name}本町3-5",
            "市役所本庁舎": f"{name}本町1-1",
        },
        districts=("中央", "東部", "西部", "南部", "北部"),
        landline_prefixes=prefixes,
        shop_area=name.removesuffix("市"),
        npo="NPO法人シニアICTサポート",
        school="市内の大学",
    )


@dataclass(frozen=True)
class VenuePlan:
    name: str
    kind: VenueKind
    capacity: int
    has_wifi: bool
    loaner_devices: int
    accessibility_notes: str
    class_weight: int  # how often classes are held here (0: help sessions only)


VENUES = (
    VenuePlan("中央公民館", VenueKind.COMMUNITY_CENTRE, 30, True, 10,
              "1階講座室。エレベーター・車椅子用トイレあり。無料駐車場あり。", 3),
    VenuePlan(STATION_NAME, VenueKind.DIGITAL_STATION, 12, True, 6,
              "段差なし。駅の改札から歩いて2分。", 0),
    VenuePlan("市立図書館", VenueKind.LIBRARY, 20, True, 4,
              "2階集会室。エレベーターあり。", 1),
    VenuePlan("市役所本庁舎", VenueKind.CITY_HALL, 24, True, 0,
              "本庁舎3階会議室。エレベーター・車椅子用トイレあり。", 1),
)


# --- names ---------------------------------------------------------------------------------

FAMILY_NAMES = (
    ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
    ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
    ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"),
    ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"),
    ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ"),
    ("山崎", "ヤマザキ"), ("森", "モリ"), ("池田", "イケダ"), ("橋本", "ハシモト"),
    ("阿部", "アベ"), ("石川", "イシカワ"), ("山下", "ヤマシタ"), ("中島", "ナカジマ"),
    ("石井", "イシイ"), ("小川", "オガワ"), ("前田", "マエダ"), ("岡田", "オカダ"),
    ("長谷川", "ハセガワ"), ("藤田", "フジタ"), ("後藤", "ゴトウ"), ("近藤", "コンドウ"),
    ("村上", "ムラカミ"), ("遠藤", "エンドウ"), ("青木", "アオキ"), ("坂本", "サカモト"),
)

# Given names common among people now in their 60s to 90s, and in their 50s.
OLDER_WOMEN = (
    ("和子", "カズコ"), ("幸子", "サチコ"), ("節子", "セツコ"), ("洋子", "ヨウコ"),
    ("美智子", "ミチコ"), ("恵子", "ケイコ"), ("京子", "キョウコ"), ("久子", "ヒサコ"),
    ("弘子", "ヒロコ"), ("信子", "ノブコ"), ("順子", "ジュンコ"), ("悦子", "エツコ"),
    ("正子", "マサコ"), ("君子", "キミコ"), ("文子", "フミコ"), ("千代子", "チヨコ"),
    ("良子", "ヨシコ"), ("昭子", "アキコ"),
)
OLDER_MEN = (
    ("茂", "シゲル"), ("博", "ヒロシ"), ("清", "キヨシ"), ("実", "ミノル"), ("勇", "イサム"),
    ("進", "ススム"), ("正", "タダシ"), ("武", "タケシ"), ("隆", "タカシ"), ("明", "アキラ"),
    ("勝", "マサル"), ("修", "オサム"), ("和夫", "カズオ"), ("正雄", "マサオ"),
    ("義雄", "ヨシオ"), ("幸雄", "ユキオ"), ("豊", "ユタカ"), ("保", "タモツ"),
)
FIFTIES_WOMEN = (
    ("由美子", "ユミコ"), ("明美", "アケミ"), ("真由美", "マユミ"), ("裕子", "ユウコ"),
    ("久美子", "クミコ"), ("直美", "ナオミ"),
)
FIFTIES_MEN = (
    ("誠", "マコト"), ("浩二", "コウジ"), ("哲也", "テツヤ"), ("健一", "ケンイチ"),
    ("隆之", "タカユキ"), ("和也", "カズヤ"),
)
YOUNGER = (
    ("美咲", "ミサキ"), ("大輔", "ダイスケ"), ("翔太", "ショウタ"), ("彩", "アヤ"),
    ("拓也", "タクヤ"), ("愛", "アイ"), ("健太", "ケンタ"), ("麻衣", "マイ"),
)
STUDENTS = (("陽菜", "ヒナ"), ("蓮", "レン"), ("結衣", "ユイ"), ("悠斗", "ユウト"))

# Age bands of the people who come (skewed old, as the cities' surveys describe).
AGE_BANDS = ((50, 59, 10), (60, 69, 28), (70, 79, 37), (80, 89, 22), (90, 95, 3))

RESIDENT_NOTES = (
    "耳が遠いため、電話ではゆっくり大きめの声で話す。",
    "老眼鏡を持ってくるよう案内する。",
    "長女がスマートフォンの購入を手伝う予定。",
    "杖を使用。1階の会場を希望。",
    "午前中の講座を希望。",
    "最近スマートフォンに機種変更したばかり。",
)

VISIT_NOTES = {
    CourseTopic.DEVICE_BASICS: ("文字を大きくする設定", "電話帳への登録", "Wi-Fiへのつなぎ方",
                                "写真の整理と削除", "充電の減りが早いとの相談"),
    CourseTopic.MESSAGING_SNS: ("LINEの友だち追加（QRコード）", "LINEで写真を送る方法",
                                "機種変更後のLINEの引き継ぎ", "LINEのビデオ通話"),
    CourseTopic.MY_NUMBER_CARD: ("マイナポータルへのログイン", "健康保険証の利用登録",
                                 "暗証番号を忘れた（市役所の窓口を案内）",
                                 "カード申請用の顔写真の撮影"),
    CourseTopic.CITY_ONLINE_SERVICES: ("市のLINE公式アカウントの登録", "電子申請のやり方",
                                       "施設予約システムの使い方"),
    CourseTopic.SECURITY: ("不審なSMSが届いた", "パスワードの管理",
                           "ウイルス警告の画面が出たとの相談"),
    CourseTopic.CASHLESS: ("QRコード決済の登録", "ポイント残高の確認方法"),
}
VISIT_TOPIC_WEIGHTS = {
    CourseTopic.DEVICE_BASICS: 30, CourseTopic.MESSAGING_SNS: 25,
    CourseTopic.MY_NUMBER_CARD: 20, CourseTopic.CITY_ONLINE_SERVICES: 10,
    CourseTopic.SECURITY: 8, CourseTopic.CASHLESS: 7,
}


@dataclass(frozen=True)
class SupporterPlan:
    affiliation: SupporterAffiliation
    organisation: str | None  # template: {area}, {npo}, {school}
    certified: bool
    skills: tuple[str, ...]


SUPPORTERS = (
    SupporterPlan(SupporterAffiliation.CARRIER_SHOP, "ドコモショップ{area}店", True,
                  ("iPhone", "Android", "マイナンバー")),
    SupporterPlan(SupporterAffiliation.CARRIER_SHOP, "auショップ{area}", True,
                  ("Android", "iPhone", "キャッシュレス")),
    SupporterPlan(SupporterAffiliation.CARRIER_SHOP, "ソフトバンク{area}", True,
                  ("iPhone", "LINE")),
    SupporterPlan(SupporterAffiliation.CARRIER_SHOP, "ワイモバイル{area}", False,
                  ("Android", "LINE")),
    SupporterPlan(SupporterAffiliation.NPO, "{npo}", True,
                  ("LINE", "マイナンバー", "セキュリティ")),
    SupporterPlan(SupporterAffiliation.NPO, "{npo}", True, ("Android", "LINE")),
    SupporterPlan(SupporterAffiliation.NPO, "{npo}", False, ("iPhone",)),
    SupporterPlan(SupporterAffiliation.VOLUNTEER, None, True, ("iPhone", "LINE")),
    SupporterPlan(SupporterAffiliation.VOLUNTEER, None, False, ("Android", "LINE")),
    SupporterPlan(SupporterAffiliation.VOLUNTEER, None, False, ("マイナンバー", "iPhone")),
    SupporterPlan(SupporterAffiliation.STUDENT, "{school}", False, ("iPhone", "Android", "LINE")),
    SupporterPlan(SupporterAffiliation.STUDENT, "{school}", False,
                  ("Android", "LINE", "キャッシュレス")),
)


# --- generators ----------------------------------------------------------------------------

class _Numbers:
    """Phone numbers with a valid shape (checked by the same parser the services use),
    never handed out twice."""

    def __init__(self, rng: random.Random, landline_prefixes: Sequence[str]) -> None:
        self.rng = rng
        self.landline_prefixes = landline_prefixes
        self.used: set[str] = set()

    def _fresh(self, make, check) -> str:
        for _ in range(10_000):
            number = make()
            try:
                e164 = check(number, ["demo"])
            except DomainError:
                continue
            if e164 not in self.used:
                self.used.add(e164)
                return number
        raise ValueError(f"cannot make valid phone numbers from {self.landline_prefixes}")

    def mobile(self) -> str:
        def make() -> str:
            prefix = self.rng.choices(("090", "080", "070"), weights=(55, 38, 7))[0]
            return f"{prefix}-{self.rng.randint(1000, 9999)}-{self.rng.randint(0, 9999):04d}"

        return self._fresh(make, phones.parse_mobile)

    def landline(self) -> str:
        def make() -> str:
            return f"{self.rng.choice(self.landline_prefixes)}-{self.rng.randint(0, 9999):04d}"

        return self._fresh(make, phones.parse_any)


def _weighted(rng: random.Random, weights: dict) -> object:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _age(rng: random.Random) -> int:
    low, high, _ = rng.choices(AGE_BANDS, weights=[w for *_, w in AGE_BANDS])[0]
    return rng.randint(low, high)


def _resident_fields(
    rng: random.Random, numbers: _Numbers, profile: CityProfile, today: date
) -> people.ResidentFields:
    age = _age(rng)
    woman = rng.random() < 0.58  # more women than men come to the classes
    if age < 60:
        given, given_kana = rng.choice(FIFTIES_WOMEN if woman else FIFTIES_MEN)
    else:
        given, given_kana = rng.choice(OLDER_WOMEN if woman else OLDER_MEN)
    family, family_kana = rng.choice(FAMILY_NAMES)

    birth_date: date | None = None
    birth_year: int | None = None
    known = rng.random()
    if known < 0.75:
        # exactly `age` years old today: born within the year before the age-th birthday
        try:
            anniversary = today.replace(year=today.year - age)
        except ValueError:  # today is 29 February
            anniversary = today.replace(year=today.year - age, day=28)
        birth_date = anniversary - timedelta(days=rng.randrange(365))
    elif known < 0.92:
        birth_year = today.year - age  # only the year was given at the counter

    mobile = numbers.mobile() if rng.random() < 0.6 else None
    if mobile:
        landline = numbers.landline() if rng.random() < 0.35 else None
        device = _weighted(rng, {Device.ANDROID: 47, Device.IPHONE: 38,
                                 Device.FEATURE_PHONE: 15})
        sms_consent = rng.random() < 0.7
        wants_sms = sms_consent and rng.random() < 0.85
        preference = ContactPreference.SMS if wants_sms else ContactPreference.PHONE_CALL
    else:
        landline = numbers.landline() if rng.random() < 0.92 else None
        device = _weighted(rng, {Device.NONE: 55, Device.TABLET: 10, None: 35})
        sms_consent = False
        preference = ContactPreference.PHONE_CALL if landline else ContactPreference.POST

    return people.ResidentFields(
        family_name=family,
        given_name=given,
        kana=f"{family_kana} {given_kana}",
        phone=mobile,
        landline=landline,
        birth_date=birth_date,
        birth_year=birth_year,
        contact_preference=preference,
        sms_consent=sms_consent,
        device=device,
        district=rng.choice(profile.districts),
        notes=rng.choice(RESIDENT_NOTES) if rng.random() < 0.12 else None,
    )


def _at(day: date, hour: int, minute: int, tz: str) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=timeutil.zone(tz))


# --- the demo ------------------------------------------------------------------------------

class _Demo:
    def __init__(self, municipality: Municipality, rng: random.Random) -> None:
        self.municipality = municipality
        self.rng = rng
        self.tz = municipality.timezone
        self.actor = Actor.system(municipality.id, municipality.timezone)
        self.profile = PROFILES.get(municipality.code) or _generic_profile(municipality)
        self.counts: Counter[str] = Counter()
        self.venues: dict[str, Venue] = {}
        self.supporters: list[Supporter] = []
        self.residents: list[Resident] = []
        self.classes: list[Session] = []
        self.help_sessions: list[Session] = []

    async def run(self) -> dict[str, int]:
        today = timeutil.today(self.tz)
        await self.create_venues()
        await self.create_supporters()
        await self.create_residents(today)
        await self.schedule(today - timedelta(days=DAYS_BACK), today + timedelta(days=DAYS_AHEAD))
        now = timeutil.now()
        # Past sessions too: staff enter who helped from the paper sign-in sheets, so the
        # programme's activity report has supporters per session for them.
        for session in self.classes + self.help_sessions:
            await self.staff(session)
        await self.register_and_check_in(now)
        await self.record_visits(now)
        self.counts["follow_ups"] = await FollowUp.filter(
            municipality_id=self.municipality.id).count()
        # Demo residents have made-up mobile numbers that may belong to real people: the SMS
        # the demo's registrations planned are withdrawn, never sent, whatever the backend.
        self.counts["sms_withdrawn"] = await Message.filter(
            municipality_id=self.municipality.id,
            status__in=(MessageStatus.PENDING, MessageStatus.SENDING),
        ).update(status=MessageStatus.CANCELLED, last_error="demo data: never sent")
        return dict(self.counts)

    async def create_venues(self) -> None:
        for plan in VENUES:
            venue = await scheduling.create_venue(
                actor=self.actor, name=plan.name, kind=plan.kind,
                address=self.profile.addresses[plan.name], capacity=plan.capacity,
                has_wifi=plan.has_wifi, loaner_devices=plan.loaner_devices,
                accessibility_notes=plan.accessibility_notes,
            )
            self.venues[plan.name] = venue
            self.counts["venues"] += 1

    async def create_supporters(self) -> None:
        rng = self.rng
        numbers = _Numbers(rng, self.profile.landline_prefixes)
        for index, plan in enumerate(SUPPORTERS, start=1):
            family, family_kana = rng.choice(FAMILY_NAMES)
            if plan.affiliation == SupporterAffiliation.STUDENT:
                given, given_kana = rng.choice(STUDENTS)
            elif plan.affiliation == SupporterAffiliation.CARRIER_SHOP:
                given, given_kana = rng.choice(YOUNGER)
            else:  # NPO members and volunteers are often retired
                given, given_kana = rng.choice(OLDER_WOMEN + OLDER_MEN + FIFTIES_WOMEN)
            organisation = None
            if plan.organisation:
                organisation = plan.organisation.format(
                    area=self.profile.shop_area, npo=self.profile.npo, school=self.profile.school)
            supporter = await people.create_supporter(
                actor=self.actor,
                display_name=f"{family} {given}",
                kana=f"{family_kana} {given_kana}",
                affiliation=plan.affiliation,
                organisation=organisation,
                phone=numbers.mobile() if rng.random() < 0.7 else None,
                email=f"supporter{index:02d}@example.jp" if rng.random() < 0.5 else None,
                skills=list(plan.skills),
                certified=plan.certified,
            )
            self.supporters.append(supporter)
            self.counts["supporters"] += 1

    async def create_residents(self, today: date) -> None:
        numbers = _Numbers(self.rng, self.profile.landline_prefixes)
        drawn: set[tuple[str, int]] = set()
        while len(self.residents) < RESIDENT_COUNT:
            fields = _resident_fields(self.rng, numbers, self.profile, today)
            year = fields.birth_date.year if fields.birth_date else fields.birth_year
            if year is not None:
                # Two made-up people with the same name (or reading) and birth year would be
                # possible duplicates (people.possible_duplicates): draw someone else.
                names = {(fields.family_name + fields.given_name, year), (fields.kana, year)}
                if names & drawn:
                    continue
                drawn |= names
            self.residents.append(await people.create_resident(fields=fields, actor=self.actor))
            self.counts["residents"] += 1

    async def schedule(self, first: date, last: date) -> None:
        rng = self.rng
        courses = await Course.filter(municipality_id=self.municipality.id).order_by("id")
        if not courses:
            raise ValueError(
                f"municipality {self.municipality.code} has no courses: the seeded catalogue "
                "covers only seeds/municipalities.yaml; create courses first")
        # Basic courses run more often than applied ones, as in the national programme.
        course_weights = [3 if c.level == CourseLevel.BASIC else 2 for c in courses]
        class_venues = [p for p in VENUES if p.class_weight]
        day = first
        while day <= last:
            # Classes on Tuesdays and Thursdays, and on Mondays every other week: 2-3 a week.
            if day.weekday() in (1, 3) or (day.weekday() == 0 and day.isocalendar().week % 2):
                course = rng.choices(courses, weights=course_weights)[0]
                plan = rng.choices(class_venues, weights=[p.class_weight for p in class_venues])[0]
                start, end = rng.choice((((10, 0), (12, 0)), ((13, 30), (15, 30))))
                capacity = min(rng.choice((10, 12, 15, 16, 18, 20)), plan.capacity)
                [session] = await scheduling.schedule_sessions(
                    actor=self.actor, kind=SessionKind.CLASS, venue_id=self.venues[plan.name].id,
                    course_id=course.id, starts_at=_at(day, *start, self.tz),
                    ends_at=_at(day, *end, self.tz), capacity=capacity,
                )
                self.classes.append(session)
            day += timedelta(days=1)
        self.counts["classes"] = len(self.classes)

        # Weekly drop-in help at the digital station (焼津市's 地域デジタルステーション idea):
        # Wednesday afternoons and Saturday mornings, each a weekly series.
        station = self.venues[STATION_NAME]
        for weekday, title, start, end in ((2, "スマホ相談会", (13, 0), (16, 0)),
                                           (5, "土曜スマホ相談会", (10, 0), (12, 0))):
            day = first + timedelta(days=(weekday - first.weekday()) % 7)
            repeats = (last - day).days // 7
            self.help_sessions += await scheduling.schedule_sessions(
                actor=self.actor, kind=SessionKind.HELP_SESSION, venue_id=station.id,
                title=title, starts_at=_at(day, *start, self.tz), ends_at=_at(day, *end, self.tz),
                repeat_weekly=repeats,
            )
        self.help_sessions.sort(key=lambda s: s.starts_at)
        self.counts["help_sessions"] = len(self.help_sessions)
        self.counts["sessions"] = len(self.classes) + len(self.help_sessions)

    async def _assign(self, session: Session, candidates: list[Supporter],
                      role: AssignmentRole) -> Supporter | None:
        """The first candidate who can take the role; double bookings are skipped."""
        for supporter in candidates:
            try:
                await scheduling.assign_supporter(actor=self.actor, session_id=session.id,
                                                  supporter_id=supporter.id, role=role)
            except DomainError:
                continue  # SUPPORTER_DOUBLE_BOOKED and the like: ask the next one
            self.counts["assignments"] += 1
            return supporter
        return None

    async def staff(self, session: Session) -> None:
        """One certified LEAD plus assistants up to 1 per 4 seats; a few sessions are left
        short, so the understaffed list has something to show."""
        rng = self.rng
        pool = self.supporters[:]
        rng.shuffle(pool)
        certified = [s for s in pool if s.certified]
        lead = await self._assign(session, certified, AssignmentRole.LEAD)
        if session.kind == SessionKind.HELP_SESSION:
            wanted = 2
        else:
            wanted = math.ceil((session.capacity or 0) / ATTENDEES_PER_SUPPORTER)
            if rng.random() < 0.2:
                wanted = max(1, wanted - rng.randint(1, 2))
        assigned = 1 if lead else 0
        remaining = [s for s in pool if s is not lead]
        while assigned < wanted and remaining:
            helper = await self._assign(session, remaining, AssignmentRole.ASSISTANT)
            if helper is None:
                break
            remaining.remove(helper)
            assigned += 1

    async def _register(self, session: Session, resident: Resident,
                        source: RegistrationSource) -> Registration | None:
        try:
            registration = await scheduling.register(
                actor=self.actor, session_id=session.id, resident_id=resident.id, source=source)
        except DomainError as error:
            if error.code == "SESSION_NOT_OPEN" and source != RegistrationSource.WALK_IN:
                # The session started while the demo was running: enter it as a walk-in.
                return await self._register(session, resident, RegistrationSource.WALK_IN)
            if error.code == "CAPACITY_FULL":
                return None
            raise
        self.counts["registrations"] += 1
        if registration.status == RegistrationStatus.WAITLISTED:
            self.counts["waitlisted"] += 1
        return registration

    async def register_and_check_in(self, now: datetime) -> None:
        rng = self.rng
        # Most registrations come from a core of regulars; some residents never come.
        regulars = rng.sample(self.residents, k=int(len(self.residents) * 0.8))
        upcoming = [s for s in self.classes if s.starts_at > now]
        # Popular classes booked beyond capacity, to show the waitlist.
        overbooked = {s.id for s in rng.sample(upcoming, k=min(3, len(upcoming)))}
        for session in self.classes:
            capacity = session.capacity or 0
            if session.starts_at <= now:
                # Past classes are entered afterwards from the paper sign-in sheet: register()
                # accepts only walk-ins once a session has started.
                count = round(capacity * rng.uniform(0.6, 1.0))
                registrations = []
                for resident in rng.sample(regulars, k=count):
                    registration = await self._register(session, resident,
                                                        RegistrationSource.WALK_IN)
                    if registration is None:
                        break
                    registrations.append(registration)
                seated = [r for r in registrations if r.status == RegistrationStatus.CONFIRMED]
                missed = max(1, round(len(seated) * (1 - ATTENDANCE_RATE))) if seated else 0
                no_shows = {r.id for r in rng.sample(seated, k=missed)}
                for registration in seated:
                    attended = registration.id not in no_shows
                    await scheduling.record_attendance(
                        actor=self.actor, registration_id=registration.id,
                        attendance=Attendance.ATTENDED if attended else Attendance.NO_SHOW)
                    self.counts["attended" if attended else "no_shows"] += 1
            else:
                if session.id in overbooked:
                    count = capacity + rng.randint(2, 5)
                else:
                    count = round(capacity * rng.uniform(0.4, 0.95))
                for resident in rng.sample(regulars, k=count):
                    source = RegistrationSource.PHONE if rng.random() < 0.7 else (
                        RegistrationSource.COUNTER)
                    await self._register(session, resident, source)

    async def record_visits(self, now: datetime) -> None:
        rng = self.rng
        past = [s for s in self.help_sessions if s.starts_at <= now]
        if not past:
            return
        for index in range(VISIT_COUNT):
            session = past[index % len(past)]
            topic = _weighted(rng, VISIT_TOPIC_WEIGHTS)
            if index % 8 == 0:
                # Could not be solved on the spot: a follow-up needs someone to contact.
                resident, outcome = rng.choice(self.residents), VisitOutcome.NEEDS_FOLLOW_UP
            elif index % 3 == 1:
                # Anonymous drop-in: only the age is noted.
                resident = None
                outcome = _weighted(rng, {VisitOutcome.RESOLVED: 70,
                                          VisitOutcome.PARTLY_RESOLVED: 30})
            else:
                resident = rng.choice(self.residents)
                outcome = _weighted(rng, {VisitOutcome.RESOLVED: 65,
                                          VisitOutcome.PARTLY_RESOLVED: 35})
            await scheduling.record_visit(actor=self.actor, data=scheduling.VisitInput(
                session_id=session.id,
                topic=topic,
                outcome=outcome,
                resident_id=resident.id if resident else None,
                age_at_visit=None if resident else _age(rng),
                helped_by_id=rng.choice(self.supporters).id,
                notes=rng.choice(VISIT_NOTES[topic]),
            ))
            self.counts["visits"] += 1
            if outcome == VisitOutcome.NEEDS_FOLLOW_UP:
                self.counts["visits_needing_follow_up"] += 1


async def load_demo(municipality_code: str = "142034", *, seed: int = 2026) -> dict[str, int]:
    """Fill one municipality with a month of demo data; {"skipped": 1} if already there.

    Loads the reference data (municipalities, courses) first. Tortoise must be initialised.
    Returns what was created, e.g. {"venues": 4, "supporters": 12, "residents": 200, ...}.
    """
    await load_reference_data()
    municipality = await Municipality.get_or_none(code=municipality_code)
    if municipality is None:
        raise ValueError(f"unknown municipality code {municipality_code!r}")
    if await Venue.filter(municipality_id=municipality.id, name=STATION_NAME).exists():
        return {"skipped": 1}
    async with in_transaction():
        return await _Demo(municipality, random.Random(seed)).run()
