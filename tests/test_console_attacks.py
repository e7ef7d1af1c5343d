"""The staff console attacked as an outsider, a curious volunteer (SUPPORTER), a planner and
staff of another municipality would: CSRF, open redirects, XSS, IDs of others, role
escalation, personal data on pages a role must not see, cookie flags, caching, the report
files authenticated by the cookie, error pages. Each test is the attack; it passes when the
attack fails."""

from __future__ import annotations

from datetime import date

import factories
import httpx
import pytest
from console_helpers import ConsoleClient, csrf_of
from factories import at

from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.people.models import Resident
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Registration, Session

COORDINATOR_EMAIL = "hiratsuka-coordinator@example.jp"
ADMIN_EMAIL = "hiratsuka-admin@example.jp"
PLANNER_EMAIL = "hiratsuka-planner@example.jp"
OTHER_ADMIN_EMAIL = "yaizu-admin@example.jp"
SCRIPT = '<script>alert(1)</script>"><img src=x>'
PHISHING = "システム更新のため、パスワードを 0120-000-000 までお電話でお知らせください"


def gid(kind: str, pk: int) -> str:
    return to_global_id(kind, pk)


@pytest.fixture
async def second_console(db):
    """A second browser (another person), from another address."""
    from divide_support.app import create_app

    transport = httpx.ASGITransport(app=create_app(init_orm=False), client=("192.0.2.11", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield ConsoleClient(c)


def _set_cookies(response: httpx.Response, name: str) -> list[str]:
    return [value for key, value in response.headers.multi_items()
            if key.lower() == "set-cookie" and value.startswith(f"{name}=")]


# --- reflected words: a link must not make a trusted page say what the attacker wants ------


async def test_a_link_cannot_make_the_supporters_page_say_anything(console, town):
    await console.login(COORDINATOR_EMAIL)
    response = await console.get("/supporters", params={"saved": PHISHING})
    assert response.status_code == 200
    assert PHISHING not in console.text()
    page = await console.get("/supporters", params={"saved": SCRIPT})
    assert page.status_code == 200 and "<script>alert" not in console.page


async def test_the_supporters_list_link_keeps_only_its_own_choice(console, town):
    await console.login(COORDINATOR_EMAIL)
    for n in range(51):
        await factories.supporter(town.coordinator, name=f"支援員 {n:02d}")
    await console.get("/supporters", params={"show": 'all"&after=x&evil=1'})
    assert "evil" not in console.page and "after=x" not in console.page


async def test_a_link_cannot_make_a_session_page_say_anything(console, town):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    await console.login(COORDINATOR_EMAIL)
    response = await console.get(f"/sessions/{gid('Session', session.id)}",
                                 params={"done": "scheduled", "count": PHISHING})
    assert response.status_code == 200
    assert PHISHING not in console.text()
    # the notice of a real weekly schedule still says how many
    await console.get(f"/sessions/{gid('Session', session.id)}",
                      params={"done": "scheduled", "count": "4"})
    assert "4回分を登録しました" in console.text()


# --- cookies ----------------------------------------------------------------------------------


async def test_the_venue_cookie_is_secure_under_an_https_public_url(console, town, settings_env):
    venue = await factories.venue(town.coordinator)
    settings_env(PUBLIC_BASE_URL="https://ds.example.jp")
    console.client.cookies.set("ds_session", town.tokens[Role.COORDINATOR])
    response = await console.client.get("/", params={"venue": gid("Venue", venue.id)})
    assert response.status_code == 200
    [cookie] = _set_cookies(response, "ds_venue")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_sign_in_cookies_are_secure_httponly_and_samesite_under_https(town, db,
                                                                            settings_env):
    from divide_support.app import create_app

    settings_env(PUBLIC_BASE_URL="https://ds.example.jp")
    transport = httpx.ASGITransport(app=create_app(init_orm=False), client=("192.0.2.12", 1))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        form = await c.get("/login")
        [login_cookie] = _set_cookies(form, "ds_login_csrf")
        assert "Secure" in login_cookie and "HttpOnly" in login_cookie
        assert "SameSite=strict" in login_cookie and "Path=/login" in login_cookie
        signed_in = await c.post("/login", data={
            "csrf_token": csrf_of(form.text), "email": COORDINATOR_EMAIL,
            "password": "correct-horse-battery"})
        assert signed_in.status_code == 303
        [session_cookie] = _set_cookies(signed_in, "ds_session")
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie
        assert "SameSite=lax" in session_cookie


async def test_a_session_cookie_planted_before_sign_in_is_not_the_one_used_after(console,
                                                                                town):
    """Session fixation: whatever ds_session the browser held, signing in issues a new token."""
    planted = town.tokens[Role.PLANNER]
    console.client.cookies.set("ds_session", "planted-by-someone-else")
    await console.get("/login")
    signed_in = await console.post("/login", {"email": COORDINATOR_EMAIL,
                                              "password": "correct-horse-battery"}, follow=False)
    [cookie] = _set_cookies(signed_in, "ds_session")
    token = cookie.split(";")[0].split("=", 1)[1]
    assert token and token not in ("planted-by-someone-else", planted)


# --- CSRF ---------------------------------------------------------------------------------


async def test_posts_without_a_valid_csrf_token_change_nothing(console, second_console, town):
    resident = await factories.resident(town.coordinator, "標的", "太郎")
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    await console.login(COORDINATOR_EMAIL)
    await second_console.login(ADMIN_EMAIL)
    await second_console.get("/")
    others_token = csrf_of(second_console.page)
    target = f"/sessions/{gid('Session', session.id)}/register"
    for forged in ("", "0" * 64, others_token, others_token.upper()):
        refused = await console.post(target, {"residentId": gid("Resident", resident.id)},
                                     csrf=forged, follow=False)
        assert refused.status_code == 403, forged
        assert "受け付けできませんでした" in console.text()
    assert not await Registration.filter(session_id=session.id).exists()
    # the same forgeries on a few other forms
    for path, data in [
        (f"/residents/{gid('Resident', resident.id)}/edit", {"familyName": "改ざん",
                                                              "givenName": "x"}),
        (f"/sessions/{gid('Session', session.id)}/cancel", {"reason": "x"}),
        ("/logout", {}),
        ("/account/password", {"currentPassword": "x", "newPassword": "y" * 12,
                               "newPasswordAgain": "y" * 12}),
    ]:
        refused = await console.post(path, data, csrf=others_token, follow=False)
        assert refused.status_code == 403, path
    assert (await Resident.get(id=resident.id)).family_name == "標的"
    assert (await Session.get(id=session.id)).status != "CANCELLED"
    assert (await console.get("/")).status_code == 200  # still signed in


async def test_a_login_from_another_site_is_refused(console, town):
    """Login CSRF: a page elsewhere posting its own e-mail and password into our form has no
    login cookie of ours (SameSite=Strict), so the double submit fails."""
    response = await console.client.post("/login", data={
        "csrf_token": "chosen-by-the-attacker", "email": COORDINATOR_EMAIL,
        "password": "correct-horse-battery"})
    assert response.status_code == 403 and "ds_session" not in response.headers.get(
        "set-cookie", "")
    console.client.cookies.set("ds_login_csrf", "a", path="/login")
    response = await console.client.post("/login", data={
        "csrf_token": "b", "email": COORDINATOR_EMAIL, "password": "correct-horse-battery"})
    assert response.status_code == 403


# --- redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", "javascript:alert(1)", "/\r\nSet-Cookie: a=b", " //evil.example",
])
async def test_login_never_sends_anyone_to_another_site(console, town, target):
    await console.get("/login", params={"next": target})
    response = await console.client.post("/login", data={
        "csrf_token": csrf_of(console.page), "email": COORDINATOR_EMAIL,
        "password": "correct-horse-battery", "next": target})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith("//")
    assert "\\" not in location and "\r" not in location and "\n" not in location
    assert "\t" not in location
    again = await console.client.get("/login", params={"next": target})  # signed in now
    assert again.headers["location"].startswith("/")
    assert not again.headers["location"].startswith("//")


# --- XSS ----------------------------------------------------------------------------------


async def test_what_people_typed_is_never_markup_on_any_page(console, town):
    me, _ = await factories.supporter_login(town, name=SCRIPT)
    venue = await factories.venue(town.coordinator, name=SCRIPT)
    session = await factories.session(town.coordinator, at(days=2, hour=10), venue_obj=venue)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                      supporter_id=me.id)
    resident = await factories.resident(town.coordinator, SCRIPT, SCRIPT, notes=SCRIPT,
                                        support_needs=SCRIPT, district=SCRIPT)
    await scheduling.register(actor=town.coordinator, session_id=session.id,
                              resident_id=resident.id)
    await console.login(COORDINATOR_EMAIL)
    for path in ["/", f"/sessions/{gid('Session', session.id)}",
                 f"/sessions/{gid('Session', session.id)}?print=1",
                 f"/residents/{gid('Resident', resident.id)}",
                 f"/residents/{gid('Resident', resident.id)}/edit",
                 f"/residents?q={SCRIPT}", f"/sessions/{gid('Session', session.id)}?q={SCRIPT}",
                 "/supporters", f"/supporters/{gid('Supporter', me.id)}", "/venues",
                 f"/residents/new?q={SCRIPT}", "/planning/activity"]:
        response = await console.get(path)
        assert response.status_code == 200, path
        assert "<script>alert" not in console.page and "<img src=x" not in console.page, path
    await console.login(ADMIN_EMAIL)
    await console.get("/admin/audit", params={"action": SCRIPT, "objectType": SCRIPT})
    assert "<script>alert" not in console.page
    await console.get("/admin/users")
    assert "<script>alert" not in console.page
    duty = ConsoleClient(console.client)
    await duty.client.post("/logout", data={"csrf_token": csrf_of(console.page)})
    await duty.login("sato@example.jp")
    await duty.get("/duties")
    assert "<script>alert" not in duty.page and "<img src=x" not in duty.page


# --- IDs of others ------------------------------------------------------------------------


async def test_another_municipalitys_ids_change_nothing_through_any_form(console, town,
                                                                         other_town):
    theirs = await factories.session(other_town.coordinator, at(days=3, hour=10))
    their_resident = await factories.resident(other_town.coordinator, "焼津", "住民")
    their_supporter = await factories.supporter(other_town.coordinator)
    their_registration = await scheduling.register(
        actor=other_town.coordinator, session_id=theirs.id, resident_id=their_resident.id)
    ours = await factories.session(town.coordinator, at(days=3, hour=10))
    await console.login(ADMIN_EMAIL)
    await console.get("/")
    from divide_support.accounts.models import User

    their_user = await User.get(email=OTHER_ADMIN_EMAIL)
    posts = [
        (f"/sessions/{gid('Session', ours.id)}/register",
         {"residentId": gid("Resident", their_resident.id)}),
        (f"/sessions/{gid('Session', theirs.id)}/register", {"residentId": ""}),
        (f"/sessions/{gid('Session', ours.id)}/cancel-seat",
         {"registrationId": gid("Registration", their_registration.id)}),
        (f"/sessions/{gid('Session', ours.id)}/attendance",
         {"registrationId": gid("Registration", their_registration.id),
          "attendance": "ATTENDED"}),
        (f"/sessions/{gid('Session', ours.id)}/assign",
         {"supporterId": gid("Supporter", their_supporter.id)}),
        (f"/sessions/{gid('Session', theirs.id)}/cancel", {"reason": "x"}),
        (f"/residents/{gid('Resident', their_resident.id)}/edit",
         {"familyName": "改ざん", "givenName": "x"}),
        (f"/residents/{gid('Resident', their_resident.id)}/opt-out", {"optedOut": "yes"}),
        (f"/supporters/{gid('Supporter', their_supporter.id)}/edit",
         {"displayName": "改ざん", "affiliation": "NPO", "active": "on"}),
        (f"/venues/{gid('Venue', theirs.venue_id)}/edit", {"name": "改ざん"}),
        (f"/admin/users/{gid('User', their_user.id)}/deactivate", {}),
        (f"/admin/users/{gid('User', their_user.id)}/sign-out", {}),
        (f"/admin/users/{gid('User', their_user.id)}/password", {"password": "x" * 16}),
        ("/admin/unlock", {"email": OTHER_ADMIN_EMAIL}),
        (f"/messages/{gid('Message', 1)}/resend", {}),
    ]
    for path, data in posts:
        response = await console.post(path, data, csrf=csrf_of(console.page) if "csrf_token"
                                      in console.page else "", follow=False)
        assert response.status_code in (400, 404), (path, response.status_code)
        assert "焼津" not in console.text(), path
        await console.get("/")
    assert (await Registration.get(id=their_registration.id)).status == "CONFIRMED"
    assert (await Resident.get(id=their_resident.id)).family_name == "焼津"
    assert (await User.get(id=their_user.id)).active
    assert (await Session.get(id=theirs.id)).status != "CANCELLED"
    for path in [f"/sessions/{gid('Session', theirs.id)}",
                 f"/residents/{gid('Resident', their_resident.id)}",
                 f"/supporters/{gid('Supporter', their_supporter.id)}",
                 f"/admin/users/{gid('User', their_user.id)}/password",
                 f"/residents/new?session={gid('Session', theirs.id)}"]:
        response = await console.get(path)
        assert response.status_code in (200, 404), path
        assert "焼津" not in console.text() and theirs.title not in console.text(), path


# --- roles --------------------------------------------------------------------------------


async def test_a_supporter_posting_to_staff_and_admin_forms_is_refused(console, town):
    me, _ = await factories.supporter_login(town)
    session = await factories.session(town.coordinator, at(days=1, hour=10))
    await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                      supporter_id=me.id)
    resident = await factories.resident(town.coordinator, "名簿", "花子", phone="090-3333-4444",
                                        birth_date=date(1948, 5, 6), notes="職員メモ")
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    await console.login("sato@example.jp")
    await console.get("/duties")
    token = csrf_of(console.page)
    sid = gid("Session", session.id)
    posts = [
        (f"/sessions/{sid}/register", {"residentId": gid("Resident", resident.id)}),
        (f"/sessions/{sid}/cancel-seat", {"registrationId": gid("Registration", registration.id)}),
        (f"/sessions/{sid}/attendance", {"registrationId": gid("Registration", registration.id)}),
        (f"/sessions/{sid}/assign", {"supporterId": gid("Supporter", me.id)}),
        (f"/sessions/{sid}/cancel", {}),
        ("/sessions/new", {"venueId": gid("Venue", session.venue_id)}),
        (f"/residents/{gid('Resident', resident.id)}/edit", {"familyName": "x", "givenName": "y"}),
        ("/residents/new", {"familyName": "x", "givenName": "y"}),
        (f"/supporters/{gid('Supporter', me.id)}/edit", {"displayName": "x", "certified": "on"}),
        ("/supporters/new", {"displayName": "x"}),
        ("/admin/users/new", {"email": "new@example.jp", "role": "ADMIN"}),
        ("/admin/unlock", {"email": ADMIN_EMAIL}),
    ]
    for path, data in posts:
        response = await console.post(path, data, csrf=token, follow=False)
        assert response.status_code == 403, path
    assert (await Registration.get(id=registration.id)).status == "CONFIRMED"
    assert (await Resident.get(id=resident.id)).family_name == "名簿"
    for path in [f"/sessions/{sid}", f"/residents/{gid('Resident', resident.id)}",
                 f"/sessions/{sid}?print=1", "/residents?q=名簿", "/follow-ups", "/messages",
                 f"/supporters/{gid('Supporter', me.id)}", "/admin/audit",
                 "/planning/participation"]:
        response = await console.get(path)
        assert response.status_code == 403, path
        assert "3333" not in console.page and "1948" not in console.page
    await console.get("/duties")
    text = console.text()
    assert "名簿 花子" in text
    assert "3333" not in text and "4444" not in text and "1948" not in text and "職員メモ" not in text


async def test_a_planner_sees_no_names_and_cannot_use_staff_forms(console, town):
    session = await factories.session(town.coordinator, at(days=1, hour=10))
    resident = await factories.resident(town.coordinator, "計画", "見えない")
    await scheduling.register(actor=town.coordinator, session_id=session.id,
                              resident_id=resident.id)
    supporter = await factories.supporter(town.coordinator, name="支援 見えない")
    await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                      supporter_id=supporter.id)
    await console.login(PLANNER_EMAIL)
    for path in ["/", "/planning/participation", "/planning/activity"]:
        await console.get(path, follow_redirects=True)
        assert "見えない" not in console.text(), path
    await console.get("/planning/activity")
    token = csrf_of(console.page)
    for path in [f"/sessions/{gid('Session', session.id)}/register", "/admin/users/new",
                 f"/residents/{gid('Resident', resident.id)}/opt-out"]:
        response = await console.post(path, {"residentId": gid("Resident", resident.id)},
                                      csrf=token, follow=False)
        assert response.status_code == 403, path
    for path in [f"/sessions/{gid('Session', session.id)}", "/supporters", "/duties"]:
        response = await console.get(path)
        assert response.status_code == 403 and "見えない" not in console.page


# --- caching, errors, report files ----------------------------------------------------------


async def test_pages_with_personal_data_are_never_stored_by_a_browser_or_proxy(console, town):
    resident = await factories.resident(town.coordinator, "保存", "禁止", phone="090-1212-3434")
    await console.login(COORDINATOR_EMAIL)
    for path in ["/", f"/residents/{gid('Resident', resident.id)}", "/residents?q=保存",
                 "/login", "/nowhere"]:
        response = await console.client.get(path, headers={"Accept": "text/html"})
        assert response.headers["cache-control"] == "no-store", path


async def test_an_unexpected_error_shows_no_trace(console, town, monkeypatch):
    from divide_support.web import client

    async def broken(*args, **kwargs):
        raise RuntimeError("secret detail 090-9999-8888 in the exception")

    await console.login(COORDINATOR_EMAIL)
    monkeypatch.setattr(client, "run", broken)
    response = await console.get("/residents")
    assert response.status_code == 500
    assert "secret detail" not in console.page and "Traceback" not in console.page
    assert "受付番号" in console.text()


async def test_the_report_files_answer_no_one_the_role_may_not_read(console, town):
    _, supporter_token = await factories.supporter_login(town)
    query = {"from": "2026-04-01", "to": "2027-03-31"}
    anonymous = await console.client.get("/reports/activity.csv", params=query)
    assert anonymous.status_code == 401
    console.client.cookies.set("ds_session", supporter_token)
    refused = await console.client.get("/reports/activity.csv", params=query)
    assert refused.status_code == 403
    console.client.cookies.set("ds_session", town.tokens[Role.PLANNER])
    allowed = await console.client.get("/reports/activity.csv", params=query)
    assert allowed.status_code == 200
    assert allowed.headers["content-disposition"].startswith("attachment")
    assert "no-store" in allowed.headers["cache-control"]
    # another site can neither read it (no CORS header) nor frame it
    assert "access-control-allow-origin" not in allowed.headers
    assert allowed.headers["x-content-type-options"] == "nosniff"


async def test_a_venue_cookie_of_another_municipality_hides_nothing_of_ours(console, town,
                                                                             other_town):
    """ds_venue holding a venue that is not ours (another deployment on the same host, or a
    planted cookie) is simply not chosen: the home page still lists today's sessions."""
    ours = await factories.session(town.coordinator, at(days=0, hour=23, minutes=30))
    theirs = await factories.venue(other_town.coordinator)
    await console.login(COORDINATOR_EMAIL)
    await console.get("/")
    assert ours.title in console.text()
    for planted in (gid("Venue", theirs.id), "garbage", gid("Resident", 1)):
        console.client.cookies.set("ds_venue", planted)
        response = await console.get("/")
        assert response.status_code == 200, planted
        assert ours.title in console.text(), planted
        [forgotten] = _set_cookies(response, "ds_venue")
        assert forgotten.split(";")[0] in ('ds_venue=""', "ds_venue="), planted
