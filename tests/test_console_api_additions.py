"""What the API gained for the console's home and planning pages: the phone list of the next
days (residentsToPhoneSoon) and a survey's metrics in its own words (metricOptions)."""

from __future__ import annotations

import factories

from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.scheduling import service as scheduling
from divide_support.seed import load_reference_data

SOON = """query($days: Int!, $venueId: ID) {
  residentsToPhoneSoon(days: $days, venueId: $venueId) {
    reason registration { resident { familyName } session { title } }
  }
}"""


async def _seat(town, session, family, *, sms):
    person = await factories.resident(town.coordinator, family, sms=sms)
    await scheduling.register(actor=town.coordinator, session_id=session.id,
                              resident_id=person.id)


async def test_the_phone_list_of_the_next_days(gql, town):
    hall = await factories.venue(town.coordinator, name="北公民館")
    tomorrow = await factories.session(town.coordinator, factories.at(days=1, hour=10),
                                       venue_obj=hall)
    later = await factories.session(town.coordinator, factories.at(days=6, hour=10),
                                    venue_obj=hall)
    elsewhere = await factories.session(town.coordinator, factories.at(days=2, hour=10))
    await _seat(town, tomorrow, "電話", sms=False)
    await _seat(town, tomorrow, "携帯", sms=True)
    await _seat(town, later, "来週", sms=False)
    await _seat(town, elsewhere, "別館", sms=False)

    data = await gql(Role.COORDINATOR).data(SOON, {"days": 3})
    rows = [(r["registration"]["resident"]["familyName"], r["reason"])
            for r in data["residentsToPhoneSoon"]]
    assert rows == [("電話", "携帯電話番号が登録されていません"),
                    ("別館", "携帯電話番号が登録されていません")]
    at_hall = await gql(Role.COORDINATOR).data(
        SOON, {"days": 7, "venueId": to_global_id("Venue", hall.id)})
    assert [r["registration"]["resident"]["familyName"]
            for r in at_hall["residentsToPhoneSoon"]] == ["電話", "来週"]


async def test_the_phone_list_is_for_staff_and_their_municipality(gql, town, other_town):
    session = await factories.session(town.coordinator, factories.at(days=1, hour=10))
    await _seat(town, session, "電話", sms=False)
    planner = await gql(Role.PLANNER)(SOON, {"days": 3})
    assert planner["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    foreign = await gql(token=other_town.tokens[Role.COORDINATOR]).data(SOON, {"days": 3})
    assert foreign["residentsToPhoneSoon"] == []


async def test_survey_metrics_in_the_surveys_own_words(gql, town):
    await load_reference_data()
    data = await gql(Role.PLANNER).data("{ surveys { key metricOptions { key label } } }")
    hiratsuka = next(s for s in data["surveys"] if s["key"] == "hiratsuka-2020-internet-use")
    assert hiratsuka["metricOptions"][0] == {
        "key": "internet_use.using", "label": "インターネットの利用の有無: 利用している"}


async def test_the_phone_list_and_understaffed_sessions_can_be_cut_short(gql, town):
    hall = await factories.venue(town.coordinator, name="北公民館")
    first = await factories.session(town.coordinator, factories.at(days=1, hour=10),
                                    venue_obj=hall)
    second = await factories.session(town.coordinator, factories.at(days=2, hour=10))
    await _seat(town, first, "一番", sms=False)
    await _seat(town, second, "二番", sms=False)
    data = await gql(Role.COORDINATOR).data("""{
      residentsToPhoneSoon(days: 3, first: 1) { registration { resident { familyName } } }
      understaffedSessions(weeks: 1, first: 1) { id }
    }""")
    assert [r["registration"]["resident"]["familyName"]
            for r in data["residentsToPhoneSoon"]] == ["一番"]
    assert [s["id"] for s in data["understaffedSessions"]] == [to_global_id("Session", first.id)]
    at_other = await gql(Role.COORDINATOR).data(
        "query($v: ID) { understaffedSessions(weeks: 1, venueId: $v) { id } }",
        {"v": to_global_id("Venue", second.venue_id)})
    assert [s["id"] for s in at_other["understaffedSessions"]] == [
        to_global_id("Session", second.id)]
    too_many = await gql(Role.COORDINATOR)("{ understaffedSessions(first: 0) { id } }")
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_home_page_lists_the_soonest_few_and_says_there_are_more(console, town):
    for day in range(1, 23):
        await factories.session(town.coordinator, factories.at(days=day % 27 + 0.5, hour=10))
    await console.login("hiratsuka-coordinator@example.jp")
    await console.get("/")
    text = console.text()
    assert "ほかにもあります（近い順に20回を表示しています）" in text
    await console.get("/sessions?understaffed=1")
    assert "これからの回（22件）" in console.text()
