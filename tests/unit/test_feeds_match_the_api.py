"""What the feeds say is what the API says, read back by libraries that are not ours.

The `.ics` feed is parsed by icalendar and expanded by recurring_ical_events, then compared
instant by instant with the API's occurrence list over ranges that cross DST changes, series
ends, cancellations and moves. The Meeting Guide feed is checked against a JSON schema
written from the code4recovery spec (tests/unit/meeting_guide.schema.json).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from icalendar import Calendar
from jsonschema import Draft7Validator

from server.appkeys import DATABASE
from server.storage.models import SeriesRow
from tests.unit import test_series_api as series_tests
from tests.unit.test_api import AUTH
from tests.unit.test_series_api import OCCURRENCE, Client, Clock, S, call, create

# The series API's fixtures: a client on a fresh database, with a clock the test sets.
client = series_tests.client
clock = series_tests.clock

MEETING_GUIDE_SCHEMA = json.loads(
    (Path(__file__).parent / "meeting_guide.schema.json").read_text(encoding="utf-8")
)

# Series across DST changes in three zones, with each way a series can end.
SERIES: dict[str, dict[str, Any]] = {
    "berlin weekly, ends_on": {
        "starts_at": "2026-10-06T19:00:00+02:00",
        "timezone": "Europe/Berlin",
        "rrule": "FREQ=WEEKLY;BYDAY=TU",
        "ends_on": "2027-04-13",
    },
    "new york two days, COUNT": {
        "starts_at": "2026-10-29T18:30:00-04:00",
        "timezone": "America/New_York",
        "rrule": "FREQ=WEEKLY;BYDAY=TH,SU;COUNT=20",
    },
    "sydney monthly, UNTIL as a date": {
        "starts_at": "2026-10-04T09:00:00+11:00",
        "timezone": "Australia/Sydney",
        "rrule": "FREQ=MONTHLY;BYDAY=1SU;UNTIL=20270606",
    },
    "berlin daily 02:30 across the spring gap, UNTIL local": {
        "starts_at": "2027-03-20T02:30:00+01:00",
        "timezone": "Europe/Berlin",
        "rrule": "FREQ=DAILY;UNTIL=20270402T023000",
    },
    "new york every other week, UNTIL in UTC": {
        "starts_at": "2026-10-27T20:00:00-04:00",
        "timezone": "America/New_York",
        "rrule": "FREQ=WEEKLY;INTERVAL=2;UNTIL=20270316T235959Z",
    },
}
FROM, TO = "2026-10-01T00:00:00Z", "2027-07-01T00:00:00Z"


def body(**fields: Any) -> dict[str, Any]:
    return {"title": "Circle", "duration_minutes": 60, "public": True, **fields}


async def api_starts(client: Client, series_id: str) -> set[datetime]:
    status, found = await call(
        client,
        "GET",
        f"{S}/{series_id}/occurrences",
        headers=AUTH,
        params={"from": FROM, "to": TO},
        documented_as="/api/v1/series/{series_id}/occurrences",
    )
    assert status == 200, found
    return {
        datetime.fromisoformat(o["starts_at"])
        for o in found["occurrences"]
        if o["status"] != "cancelled"
    }


async def ics_starts(client: Client, series_id: str) -> set[datetime]:
    response = await client.get(f"/api/v1/feeds/series/{series_id}.ics")
    assert response.status == 200
    calendar = Calendar.from_ical(await response.read())
    events = recurring_ical_events.of(calendar).between(
        datetime.fromisoformat(FROM), datetime.fromisoformat(TO)
    )
    return {event.decoded("dtstart").astimezone(UTC) for event in events}


@pytest.mark.parametrize("fields", SERIES.values(), ids=SERIES)
async def test_the_calendar_feed_gives_the_api_s_instants_across_dst_ends_cancels_and_moves(
    client: Client, fields: dict[str, Any]
) -> None:
    status, series = await create(client, body(**fields))
    assert status == 201, series
    sid = series["id"]
    before = await api_starts(client, sid)
    assert before == await ics_starts(client, sid)

    # Cancel the third occurrence, move the fifth by 45 minutes: both feeds follow.
    _, listed = await call(
        client,
        "GET",
        f"{S}/{sid}/occurrences",
        headers=AUTH,
        params={"from": FROM, "to": TO},
        documented_as="/api/v1/series/{series_id}/occurrences",
    )
    third, fifth = listed["occurrences"][2], listed["occurrences"][4]
    path = f"{S}/{sid}/occurrences/{{}}"
    status, _ = await call(
        client,
        "PATCH",
        path.format(third["id"]),
        headers=AUTH,
        json={"cancelled": True},
        documented_as=OCCURRENCE,
    )
    assert status == 200
    moved_to = datetime.fromisoformat(fifth["starts_at"]) + timedelta(minutes=45)
    status, moved = await call(
        client,
        "PATCH",
        path.format(fifth["id"]),
        headers=AUTH,
        json={"starts_at": moved_to.isoformat()},
        documented_as=OCCURRENCE,
    )
    assert status == 200, moved

    after = await api_starts(client, sid)
    assert datetime.fromisoformat(third["starts_at"]) not in after
    assert moved_to in after
    assert after == await ics_starts(client, sid)


async def test_until_is_written_in_utc_for_a_start_with_a_time_zone(client: Client) -> None:
    _, series = await create(
        client, body(**SERIES["berlin daily 02:30 across the spring gap, UNTIL local"])
    )
    response = await client.get(f"/api/v1/feeds/series/{series['id']}.ics")
    event = Calendar.from_ical(await response.read()).walk("VEVENT")[0]

    until = event["rrule"]["UNTIL"][0]
    # 2 April 2027 02:30 in Berlin (summer time) is 00:30 UTC.
    assert until == datetime(2027, 4, 2, 0, 30, tzinfo=UTC)
    assert event.decoded("dtstart").tzinfo is not None


async def test_the_time_zone_in_the_calendar_keeps_daylight_saving_after_2038(
    client: Client, clock: Clock
) -> None:
    clock.now = datetime(2041, 1, 1, tzinfo=UTC)
    status, series = await create(
        client,
        body(
            starts_at="2041-03-05T19:00:00+01:00",
            timezone="Europe/Berlin",
            rrule="FREQ=WEEKLY;BYDAY=TU;COUNT=12",
        ),
    )
    assert status == 201, series
    response = await client.get(f"/api/v1/feeds/series/{series['id']}.ics")
    calendar = Calendar.from_ical(await response.read())
    starts = sorted(
        e.decoded("dtstart").astimezone(UTC)
        for e in recurring_ical_events.of(calendar).between(
            datetime(2041, 3, 1, tzinfo=UTC), datetime(2041, 6, 1, tzinfo=UTC)
        )
    )
    berlin = ZoneInfo("Europe/Berlin")
    assert [s.astimezone(berlin).hour for s in starts] == [19] * 12
    # Before 31 March 2041 Berlin is on UTC+1, after it on UTC+2.
    assert starts[0].hour == 18 and starts[-1].hour == 17


async def test_a_broken_stored_series_is_left_out_and_the_feeds_still_answer(
    client: Client, clock: Clock
) -> None:
    _, good = await create(client, body(**SERIES["berlin weekly, ends_on"]))
    async with client.app[DATABASE].sessions.begin() as session:
        broken = await session.get(SeriesRow, good["id"])
        assert broken is not None
        session.add(
            SeriesRow(
                **{
                    column.key: getattr(broken, column.key)
                    for column in SeriesRow.__table__.columns
                    if column.key not in ("id", "join_token", "first_start", "rrule", "timezone")
                },
                id="broken0000000000",
                join_token="broken-join-token",
                # Stored before years were checked: no local time exists for it in New York.
                first_start=datetime(1, 1, 1, 0, 30, tzinfo=UTC),
                timezone="America/New_York",
                rrule="FREQ=DAILY",
            )
        )
    clock.now = datetime(2026, 10, 7, tzinfo=UTC)
    for path in ("/api/v1/feeds/calendar.ics", "/api/v1/feeds/meeting-guide.json"):
        response = await client.get(path)
        assert response.status == 200, path
        text = await response.text()
        assert good["join_url"] in text
        assert "broken-join-token" not in text


# --- Meeting Guide -------------------------------------------------------------------------


async def meeting_guide(client: Client) -> list[dict[str, Any]]:
    status, meetings = await call(client, "GET", "/api/v1/feeds/meeting-guide.json")
    assert status == 200
    Draft7Validator(MEETING_GUIDE_SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER).validate(
        meetings
    )
    found: list[dict[str, Any]] = meetings
    return found


async def test_meeting_guide_lists_running_weekly_series_at_their_own_time_and_days(
    client: Client, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # a Monday
    weekly = body(starts_at="2026-10-06T19:00:00+02:00", timezone="Europe/Berlin")
    cases = {
        "weekly": {**weekly, "rrule": "FREQ=WEEKLY;BYDAY=TU,TH"},
        "daily": {**weekly, "starts_at": "2026-10-06T07:15:00+02:00", "rrule": "FREQ=DAILY"},
        "byhour": {
            **weekly,
            "starts_at": "2026-10-06T20:00:00+02:00",
            "rrule": "FREQ=WEEKLY;BYDAY=TU;BYHOUR=20;BYMINUTE=0",
        },
        "ended by date": {**weekly, "rrule": "FREQ=WEEKLY;BYDAY=TU", "ends_on": "2026-10-27"},
        "ended by until": {**weekly, "rrule": "FREQ=WEEKLY;BYDAY=TU;UNTIL=20261020"},
        "count used up": {**weekly, "rrule": "FREQ=WEEKLY;BYDAY=TU;COUNT=3"},
        "not started": {
            **weekly,
            "starts_at": "2027-01-05T19:00:00+01:00",
            "rrule": "FREQ=WEEKLY;BYDAY=TU",
        },
        "fortnightly": {**weekly, "rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"},
        "monthly": {**weekly, "rrule": "FREQ=MONTHLY;BYDAY=1TU"},
        "one-off": {**weekly, "starts_at": "2026-11-03T19:00:00+01:00"},
    }
    ids = {}
    for name, fields in cases.items():
        status, series = await create(client, {**fields, "title": name})
        assert status == 201, (name, series)
        ids[series["id"]] = name

    meetings = await meeting_guide(client)

    listed = {ids[m["slug"]]: (m["day"], m["time"], m["end_time"]) for m in meetings}
    assert listed == {
        "weekly": ([2, 4], "19:00", "20:00"),
        "daily": ([0, 1, 2, 3, 4, 5, 6], "07:15", "08:15"),
        "byhour": ([2], "20:00", "21:00"),
    }
    assert all(m["conference_url"].startswith("http") for m in meetings)


async def test_meeting_guide_lists_a_series_once_it_begins_within_the_week(
    client: Client, clock: Clock
) -> None:
    _, series = await create(
        client,
        body(
            starts_at="2026-11-10T19:00:00+01:00",
            timezone="Europe/Berlin",
            rrule="FREQ=WEEKLY;BYDAY=TU",
        ),
    )
    clock.now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert await meeting_guide(client) == []
    clock.now = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
    assert [m["slug"] for m in await meeting_guide(client)] == [series["id"]]
