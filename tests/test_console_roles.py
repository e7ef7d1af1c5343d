"""Supporters, a supporter's own duties, venues and administration in the console, over HTTP
in-process (the browser tests walk the main flows in Chromium); and the API operations these
pages use (updateSupporter, updateVenue, users, createUser, resetPassword, changePassword,
unlockLogin) with their refusals."""

from __future__ import annotations

from datetime import date, timedelta

import factories
import pytest
from conftest import PASSWORD, GraphQLClient
from factories import at

from divide_support.accounts import service as accounts
from divide_support.accounts.models import AuthToken, LoginThrottle, User
from divide_support.audit.models import AuditEntry
from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.people.models import Supporter
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Venue

ADMIN_EMAIL = "hiratsuka-admin@example.jp"
COORDINATOR_EMAIL = "hiratsuka-coordinator@example.jp"


def gid(kind: str, pk: int) -> str:
    return to_global_id(kind, pk)


# --- supporters ----------------------------------------------------------------------------


async def test_the_roster_shows_skills_and_certification(console, town):
    await factories.supporter(town.coordinator, name="認定 太郎")
    await factories.supporter(town.coordinator, name="補助 花子", certified=False)
    await console.login(COORDINATOR_EMAIL)
    response = await console.get("/supporters")
    assert response.status_code == 200
    text = console.text()
    assert "認定 太郎" in text and "補助 花子" in text and "iPhone" in text
    assert "認定 （講師ができます）" in text and "未認定" in text


async def test_adding_a_supporter_and_the_refusal_at_the_field(console, town):
    await console.login(COORDINATOR_EMAIL)
    await console.get("/supporters/new")
    refused = await console.post("/supporters/new", {
        "displayName": "鈴木 一郎", "affiliation": "NPO", "phone": "12345", "skills": "LINE"})
    assert refused.status_code == 400
    assert "電話番号" in console.text() and 'id="phone-error"' in console.page
    assert 'value="鈴木 一郎"' in console.page  # what was typed is kept
    assert not await Supporter.filter(display_name="鈴木 一郎").exists()
    created = await console.post("/supporters/new", {
        "displayName": "鈴木 一郎", "affiliation": "NPO", "phone": "090-1111-2222",
        "skills": "LINE、マイナンバーカード", "certified": "on"})
    assert created.status_code == 200
    text = console.text()
    assert "鈴木 一郎さん" in text and "LINE、マイナンバーカード" in text and "090-1111-2222" in text
    supporter = await Supporter.get(display_name="鈴木 一郎")
    assert supporter.certified and supporter.skills == ["LINE", "マイナンバーカード"]


async def test_editing_a_supporter_and_their_duties(console, town):
    supporter = await factories.supporter(town.coordinator, name="編集 前")
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                      supporter_id=supporter.id)
    await console.login(COORDINATOR_EMAIL)
    page = await console.get(f"/supporters/{gid('Supporter', supporter.id)}")
    assert page.status_code == 200
    assert session.title in console.text() and "これからの担当" in console.text()
    await console.get(f"/supporters/{gid('Supporter', supporter.id)}/edit")
    refused = await console.post(f"/supporters/{gid('Supporter', supporter.id)}/edit", {
        "displayName": "", "affiliation": "NPO", "active": "on"})
    assert refused.status_code == 400
    assert 'id="displayName-error"' in console.page and "氏名を入力してください" in console.text()
    assert (await Supporter.get(id=supporter.id)).display_name == "編集 前"
    saved = await console.post(f"/supporters/{gid('Supporter', supporter.id)}/edit", {
        "displayName": "編集 後", "affiliation": "STUDENT", "skills": "Android",
        "certified": ""})  # unticked: no longer certified, and no longer active
    assert saved.status_code == 200 and "保存しました" in console.text()
    row = await Supporter.get(id=supporter.id)
    assert (row.display_name, row.certified, row.active, row.skills) == (
        "編集 後", False, False, ["Android"])
    assert await AuditEntry.filter(action="supporter.update", object_ids=[supporter.id]).exists()


async def test_another_municipalitys_supporter_and_venue_are_not_found(console, town, other_town):
    theirs = await factories.supporter(other_town.coordinator, name="焼津 支援員")
    venue = await factories.venue(other_town.coordinator, name="焼津の会場")
    await console.login(COORDINATOR_EMAIL)
    for path in (f"/supporters/{gid('Supporter', theirs.id)}",
                 f"/supporters/{gid('Supporter', theirs.id)}/edit",
                 f"/venues/{gid('Venue', venue.id)}/edit"):
        response = await console.get(path)
        assert response.status_code == 404, path
        assert "見つかりません" in console.text() and "焼津" not in console.text()
    await console.get("/supporters")
    response = await console.post(f"/supporters/{gid('Supporter', theirs.id)}/edit", {
        "displayName": "乗っ取り", "affiliation": "NPO"})
    assert response.status_code == 404
    assert (await Supporter.get(id=theirs.id)).display_name == "焼津 支援員"


async def test_venues_are_listed_and_edited(console, town):
    venue = await factories.venue(town.coordinator, capacity=30, name="旭公民館")
    await factories.session(town.coordinator, at(days=2, hour=10), capacity=20, venue_obj=venue)
    await console.login(COORDINATOR_EMAIL)
    await console.get("/venues")
    assert "旭公民館" in console.text() and "30人" in console.text()
    await console.get(f"/venues/{gid('Venue', venue.id)}/edit")
    refused = await console.post(f"/venues/{gid('Venue', venue.id)}/edit", {
        "name": "旭公民館", "kind": "COMMUNITY_CENTRE", "capacity": "12", "hasWifi": "on"})
    assert refused.status_code == 400
    assert 'id="capacity-error"' in console.page and "定員20人の回" in console.text()
    assert (await Venue.get(id=venue.id)).capacity == 30
    saved = await console.post(f"/venues/{gid('Venue', venue.id)}/edit", {
        "name": "旭公民館 2階", "kind": "COMMUNITY_CENTRE", "capacity": "２４",
        "loanerDevices": "3"})
    assert saved.status_code == 200 and "保存しました" in console.text()
    row = await Venue.get(id=venue.id)
    assert (row.name, row.capacity, row.has_wifi, row.loaner_devices) == (
        "旭公民館 2階", 24, False, 3)


async def test_a_planner_and_a_supporter_cannot_open_the_counters_pages(console, town):
    await console.login("hiratsuka-planner@example.jp")
    for path in ("/supporters", "/venues", "/supporters/new", "/duties"):
        assert (await console.get(path)).status_code == 403, path
        assert "権限がありません" in console.text()


# --- a supporter's own duties --------------------------------------------------------------


async def test_a_supporter_sees_their_duties_with_attendees_but_no_phone_numbers(console, town):
    me, _ = await factories.supporter_login(town)
    colleague = await factories.supporter(town.coordinator, name="同僚 支援員")
    mine = await factories.session(town.coordinator, at(days=2, hour=10))
    others = await factories.session(town.coordinator, at(days=3, hour=10))
    await scheduling.assign_supporter(actor=town.coordinator, session_id=mine.id,
                                      supporter_id=me.id)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=others.id,
                                      supporter_id=colleague.id)
    guest = await factories.resident(town.coordinator, "参加", "太郎", sms=True,
                                     phone="090-4444-7777", birth_date=date(1950, 4, 1),
                                     device="IPHONE", support_needs="字を大きくしてほしい",
                                     notes="職員だけのメモ")
    stranger = await factories.resident(town.coordinator, "別回", "次郎")
    await scheduling.register(actor=town.coordinator, session_id=mine.id, resident_id=guest.id)
    await scheduling.register(actor=town.coordinator, session_id=others.id,
                              resident_id=stranger.id)
    await console.login("sato@example.jp")
    home = await console.client.get("/")
    assert home.headers["location"] == "/duties"
    await console.get("/duties")
    text = console.text()
    assert mine.title in text and "参加 太郎 様" in text and "iPhone" in text
    assert "字を大きくしてほしい" in text and "職員だけのメモ" not in text
    assert others.title not in text and "別回" not in text
    assert "4444" not in text and "7777" not in text and "1950" not in text
    assert 'href="webcal://' in console.page
    assert "照会するカレンダーを追加" in text and "URLで追加" in text
    # the pages of the counter are not theirs
    assert (await console.get("/supporters")).status_code == 403
    assert (await console.get("/admin/users")).status_code == 403


async def test_a_supporters_duty_lists_the_seats_then_the_waitlist_in_its_order(console, town):
    me, _ = await factories.supporter_login(town)
    full = await factories.session(town.coordinator, at(days=2, hour=10), capacity=1)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=full.id,
                                      supporter_id=me.id)
    for given in ("一番", "二番", "三番"):  # one seat, then two waiting in this order
        resident = await factories.resident(town.coordinator, "順番", given)
        await scheduling.register(actor=town.coordinator, session_id=full.id,
                                  resident_id=resident.id)
    await console.login("sato@example.jp")
    await console.get("/duties")
    text = console.text()
    assert text.index("順番 一番 様") < text.index("順番 二番 様") < text.index("順番 三番 様")


# --- administration ------------------------------------------------------------------------


async def test_a_coordinator_on_the_admin_pages_gets_403(console, town):
    await console.login(COORDINATOR_EMAIL)
    for path in ("/admin/users", "/admin/users/new", "/admin/audit",
                 f"/admin/users/{gid('User', town.planner.user_id)}/password"):
        response = await console.get(path)
        assert response.status_code == 403, path
        assert "権限がありません" in console.text()
    await console.get("/")
    response = await console.post(f"/admin/users/{gid('User', town.planner.user_id)}/deactivate")
    assert response.status_code == 403
    assert (await User.get(id=town.planner.user_id)).active


async def test_an_admin_creates_a_user_with_a_generated_password_shown_once(console, town):
    supporter = await factories.supporter(town.coordinator, name="新人 支援員")
    await console.login(ADMIN_EMAIL)
    await console.get("/admin/users/new")
    refused = await console.post("/admin/users/new", {
        "email": "shinjin@example.jp", "displayName": "新人", "role": "SUPPORTER"})
    assert refused.status_code == 400
    assert 'id="supporterId-error"' in console.page and 'value="shinjin@example.jp"' in console.page
    assert not await User.filter(email="shinjin@example.jp").exists()
    weak = await console.post("/admin/users/new", {
        "email": "shinjin@example.jp", "role": "COORDINATOR", "password": "short"})
    assert weak.status_code == 400 and 'id="password-error"' in console.page
    created = await console.post("/admin/users/new", {
        "email": "shinjin@example.jp", "displayName": "新人", "role": "SUPPORTER",
        "supporterId": gid("Supporter", supporter.id)})
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    assert "この画面でしか表示しません" in console.text()
    password = console.page.split('class="password-once">')[1].split("<")[0]
    assert (await accounts.login(email="shinjin@example.jp", password=password)).token
    await console.get("/admin/users")
    assert "shinjin@example.jp" in console.text() and "新人 支援員" in console.text()
    taken = await console.post("/admin/users/new", {
        "email": "SHINJIN@example.jp", "role": "COORDINATOR", "password": PASSWORD})
    assert taken.status_code == 400 and "既に使われています" in console.text()


async def test_an_admin_deactivates_reactivates_and_signs_a_user_out(console, town):
    await console.login(ADMIN_EMAIL)
    await console.get("/admin/users")
    planner = gid("User", town.planner.user_id)
    await console.post(f"/admin/users/{planner}/deactivate")
    assert "を無効にしました" in console.text()
    assert await accounts.authenticate(town.tokens[Role.PLANNER]) is None
    with pytest.raises(Exception, match="正しくありません"):
        await accounts.login(email="hiratsuka-planner@example.jp", password=PASSWORD)
    await console.post(f"/admin/users/{planner}/activate")
    assert "を有効に戻しました" in console.text()
    token = (await accounts.login(email="hiratsuka-planner@example.jp", password=PASSWORD)).token
    await console.post(f"/admin/users/{planner}/sign-out")
    assert "すべての端末からログアウトさせました" in console.text()
    assert await accounts.authenticate(token) is None
    # their own account offers no "deactivate" button, and the API refuses it anyway
    me = gid("User", town.admin.user_id)
    assert f"/admin/users/{me}/deactivate" not in console.page
    refused = await console.post(f"/admin/users/{me}/deactivate")
    assert refused.status_code == 400 and "自分のアカウントは無効にできません" in console.text()


async def test_an_admin_resets_a_password_and_another_towns_user_is_not_found(console, town,
                                                                              other_town):
    await console.login(ADMIN_EMAIL)
    planner = gid("User", town.planner.user_id)
    await console.get(f"/admin/users/{planner}/password")
    short = await console.post(f"/admin/users/{planner}/password", {"password": "abc"})
    assert short.status_code == 400 and 'id="password-error"' in console.page
    await console.post(f"/admin/users/{planner}/password", {"password": "a-new-password-1"})
    assert "パスワードを再設定しました" in console.text()
    assert await accounts.authenticate(town.tokens[Role.PLANNER]) is None
    assert (await accounts.login(email="hiratsuka-planner@example.jp",
                                 password="a-new-password-1")).token
    foreign = gid("User", other_town.planner.user_id)
    assert (await console.get(f"/admin/users/{foreign}/password")).status_code == 404
    await console.get("/admin/users")
    assert (await console.post(f"/admin/users/{foreign}/deactivate")).status_code == 404
    assert (await User.get(id=other_town.planner.user_id)).active


async def test_an_admin_unlocks_an_email_that_is_locked_out(console, town, settings_env):
    settings_env(LOGIN_MAX_FAILURES="3")
    for _ in range(4):
        await console.login("hiratsuka-planner@example.jp", "wrong-password-1")
    assert "しばらくログインできません" in console.text()
    await console.login(ADMIN_EMAIL)
    await console.get("/admin/users")
    unknown = await console.post("/admin/unlock", {"email": "nobody@example.jp"})
    assert unknown.status_code == 400 and 'id="email-error"' in console.page
    assert 'value="nobody@example.jp"' in console.page
    await console.post("/admin/unlock", {"email": "Hiratsuka-Planner@example.jp"})
    assert "のロックを解除しました" in console.text()
    locks = await LoginThrottle.filter(locked_until__isnull=False)
    assert all(t.key.startswith("address:") for t in locks)  # an address block is not theirs
    console.client.cookies.clear()
    response = await console.login("hiratsuka-planner@example.jp")
    assert response.history and response.history[0].headers["location"] == "/"
    assert "ds_session" in console.client.cookies and "しばらく" not in console.text()


async def test_the_audit_log_filters_and_pages(console, town):
    for n in range(3):
        await factories.supporter(town.coordinator, name=f"監査 {n}")
    await console.login(ADMIN_EMAIL)
    await console.get("/admin/audit")
    assert "監査ログ" in console.text() and "ログイン" in console.text()
    await console.get("/admin/audit?action=supporter.create")
    text = console.text()
    assert "記録（3件" in text and "支援員を登録" in text and "auth.login" not in text
    await console.get("/admin/audit?objectType=Venue")
    assert "条件に合う記録はありません" in console.text()
    for n in range(55):
        await factories.supporter(town.coordinator, name=f"多数 {n}")
    await console.get("/admin/audit?action=supporter.create")
    assert "次の50件" in console.text()
    next_url = console.page.split('href="/admin/audit?')[-1].split('"')[0].replace("&amp;", "&")
    await console.get("/admin/audit?" + next_url)
    assert "続きのページ" in console.text() and "最初のページへ" in console.text()
    assert console.page.count("<tr>") - 1 == 8  # 58 in all: 50, then these 8


# --- the API these pages use ---------------------------------------------------------------


async def test_update_supporter_and_update_venue_are_for_staff(gql, town):
    supporter = await factories.supporter(town.coordinator, name="API 支援員")
    venue = await factories.venue(town.coordinator, name="API 会場")
    update_supporter = """mutation ($id: ID!) { updateSupporter(input: {supporterId: $id,
        certified: false, skills: ["LINE"], kana: null}) {
        supporter { certified skills kana } errors { code field } } }"""
    update_venue = """mutation ($id: ID!) { updateVenue(input: {venueId: $id, capacity: 0}) {
        venue { capacity } errors { code field } } }"""
    planner = gql(Role.PLANNER)
    body = await planner(update_supporter, {"id": gid("Supporter", supporter.id)})
    assert body["data"]["updateSupporter"]["errors"][0]["code"] == "FORBIDDEN"
    data = await gql(Role.COORDINATOR).data(update_supporter,
                                            {"id": gid("Supporter", supporter.id)})
    assert data["updateSupporter"]["supporter"] == {"certified": False, "skills": ["LINE"],
                                                    "kana": None}
    data = await gql(Role.COORDINATOR).data(update_venue, {"id": gid("Venue", venue.id)})
    assert data["updateVenue"]["errors"] == [{"code": "BAD_USER_INPUT",
                                              "field": ["input", "capacity"]}]
    assert (await Venue.get(id=venue.id)).capacity == 40


async def test_users_and_create_user_are_for_admins_of_their_own_town(gql, town, other_town):
    users = "{ users { totalCount edges { node { email role active } } } }"
    body = await gql(Role.COORDINATOR)(users)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    data = await gql(Role.ADMIN).data(users)
    emails = {e["node"]["email"] for e in data["users"]["edges"]}
    assert emails == {"hiratsuka-admin@example.jp", "hiratsuka-coordinator@example.jp",
                      "hiratsuka-planner@example.jp"}
    create = """mutation ($e: String!, $p: String) { createUser(input: {email: $e,
        role: PLANNER, password: $p}) { user { email role } generatedPassword
        errors { code field } } }"""
    refused = await gql(Role.COORDINATOR).data(create, {"e": "x@example.jp", "p": None})
    assert refused["createUser"]["errors"][0]["code"] == "FORBIDDEN"
    made = await gql(Role.ADMIN).data(create, {"e": "Planner2@Example.jp", "p": None})
    assert made["createUser"]["user"] == {"email": "planner2@example.jp", "role": "PLANNER"}
    assert len(made["createUser"]["generatedPassword"]) >= 16
    typed = await gql(Role.ADMIN).data(create, {"e": "planner3@example.jp", "p": PASSWORD})
    assert typed["createUser"]["generatedPassword"] is None
    row = await User.get(email="planner2@example.jp")
    assert row.municipality_id == town.municipality.id
    entry = await AuditEntry.filter(action="user.create", object_ids=[row.id]).first()
    assert entry.actor_email == "hiratsuka-admin@example.jp"
    assert "generatedPassword" not in str(entry.details) and made["createUser"][
        "generatedPassword"] not in str(entry.details)
    foreign_supporter = await factories.supporter(other_town.coordinator)
    linked = await gql(Role.ADMIN).data("""mutation ($s: ID!) { createUser(input: {
        email: "s@example.jp", role: SUPPORTER, supporterId: $s}) { user { id }
        errors { code field } } }""", {"s": gid("Supporter", foreign_supporter.id)})
    assert linked["createUser"]["errors"] == [{"code": "NOT_FOUND",
                                               "field": ["input", "supporterId"]}]


async def test_reset_password_revokes_tokens_and_is_audited(gql, town, other_town):
    reset = """mutation ($u: ID!) { resetPassword(input: {userId: $u}) { generatedPassword
        errors { code field } } }"""
    planner = gid("User", town.planner.user_id)
    assert (await gql(Role.COORDINATOR).data(reset, {"u": planner}))["resetPassword"][
        "errors"][0]["code"] == "FORBIDDEN"
    data = await gql(Role.ADMIN).data(reset, {"u": planner})
    password = data["resetPassword"]["generatedPassword"]
    assert await accounts.authenticate(town.tokens[Role.PLANNER]) is None
    assert (await accounts.login(email="hiratsuka-planner@example.jp", password=password)).token
    assert await AuditEntry.filter(action="user.reset_password",
                                   object_ids=[town.planner.user_id]).exists()
    foreign = await gql(Role.ADMIN).data(reset, {"u": gid("User", other_town.planner.user_id)})
    assert foreign["resetPassword"]["errors"][0]["code"] == "NOT_FOUND"


async def test_change_password_needs_the_current_one_and_keeps_this_session(gql, town, client):
    first = await accounts.login(email="hiratsuka-coordinator@example.jp", password=PASSWORD)
    change = """mutation ($c: String!, $n: String!) { changePassword(input: {
        currentPassword: $c, newPassword: $n}) { user { email } errors { code field } } }"""
    me = GraphQLClient(client, town.tokens[Role.COORDINATOR])
    wrong = await me.data(change, {"c": "not-my-password", "n": "brand-new-password"})
    assert wrong["changePassword"]["errors"] == [{"code": "INVALID_CREDENTIALS",
                                                  "field": ["input", "currentPassword"]}]
    weak = await me.data(change, {"c": PASSWORD, "n": "short"})
    assert weak["changePassword"]["errors"][0]["field"] == ["input", "newPassword"]
    done = await me.data(change, {"c": PASSWORD, "n": "brand-new-password"})
    assert done["changePassword"]["user"]["email"] == "hiratsuka-coordinator@example.jp"
    assert await accounts.authenticate(town.tokens[Role.COORDINATOR]) is not None
    assert await accounts.authenticate(first.token) is None
    assert (await accounts.login(email="hiratsuka-coordinator@example.jp",
                                 password="brand-new-password")).token
    assert await AuditEntry.filter(action="user.change_password").exists()
    anonymous = await GraphQLClient(client, None)(change, {"c": "a", "n": "b"})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_unlock_login_clears_the_emails_counters_only(gql, town, other_town,
                                                            settings_env):
    settings_env(LOGIN_MAX_FAILURES="2")
    for _ in range(3):
        with pytest.raises(Exception):  # noqa: B017 - wrong password, then locked
            await accounts.login(email="hiratsuka-planner@example.jp", password="wrong-one-1")
    with pytest.raises(Exception, match="しばらく"):
        await accounts.login(email="hiratsuka-planner@example.jp", password=PASSWORD)
    unlock = """mutation ($e: String!) { unlockLogin(input: {email: $e}) { lockedCount
        user { email } errors { code field } } }"""
    assert (await gql(Role.COORDINATOR).data(unlock, {"e": "hiratsuka-planner@example.jp"}))[
        "unlockLogin"]["errors"][0]["code"] == "FORBIDDEN"
    foreign = await gql(Role.ADMIN).data(unlock, {"e": "yaizu-planner@example.jp"})
    assert foreign["unlockLogin"]["errors"] == [{"code": "NOT_FOUND",
                                                 "field": ["input", "email"]}]
    data = await gql(Role.ADMIN).data(unlock, {"e": "hiratsuka-planner@example.jp"})
    assert data["unlockLogin"]["lockedCount"] >= 1
    assert (await accounts.login(email="hiratsuka-planner@example.jp", password=PASSWORD)).token
    entry = await AuditEntry.filter(action="user.unlock_login").first()
    assert entry.object_ids == [town.planner.user_id]
    again = await gql(Role.ADMIN).data(unlock, {"e": "hiratsuka-planner@example.jp"})
    assert again["unlockLogin"]["lockedCount"] == 0


async def test_the_cli_still_creates_users_and_sets_passwords(town):
    user = await accounts.create_user(email="cli@example.jp", role=Role.COORDINATOR,
                                      municipality_code=town.municipality.code,
                                      password=PASSWORD)
    assert user.municipality_id == town.municipality.id
    token = (await accounts.login(email="cli@example.jp", password=PASSWORD)).token
    await accounts.set_password(email="cli@example.jp", password="another-password-1")
    assert await accounts.authenticate(token) is None
    assert await AuthToken.filter(user_id=user.id, revoked_at__isnull=True).count() == 0


def test_every_new_field_keeps_dates_in_range():
    # guards the helper used above: "at" is a future moment
    assert at(days=1) - at() > timedelta(hours=23)
