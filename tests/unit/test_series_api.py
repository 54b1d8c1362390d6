"""The series API and the feeds, over HTTP, with responses checked against the document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from icalendar import Calendar

from rooms.model import CircleState, Role, Seat
from rooms.recurrence import FIRST_YEAR, LAST_YEAR
from server.app import create_app
from server.appkeys import DATABASE
from server.config import Settings
from server.storage.repository import SqlCircleStore
from tests.unit.test_api import ADMIN_TOKEN, AUTH, Client, call

BERLIN = ZoneInfo("Europe/Berlin")
# Tuesday 2026-10-13 19:00 Berlin (17:00 UTC, summer time); DST ends 2026-10-25.
FIRST = datetime(2026, 10, 13, 19, 0, tzinfo=BERLIN)
NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
WEEKLY = {
    "title": "Tuesday circle",
    "description": "Peer support, audio only.",
    "starts_at": FIRST.isoformat(),
    "timezone": "Europe/Berlin",
    "duration_minutes": 90,
    "rrule": "FREQ=WEEKLY;BYDAY=TU",
    "capacity": 12,
    "public": True,
}
S = "/api/v1/series"
ONE = "/api/v1/series/{series_id}"
OCCURRENCES = "/api/v1/series/{series_id}/occurrences"
OCCURRENCE = "/api/v1/series/{series_id}/occurrences/{occurrence_id}"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path, clock: Clock
) -> Client:
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN)
    return await aiohttp_client(create_app(settings, clock=clock))


async def create(client: Client, body: Any = None) -> tuple[int, Any]:
    return await call(client, "POST", S, headers=AUTH, json=WEEKLY if body is None else body)


async def occurrences(client: Client, series_id: str, start: str, end: str) -> list[Any]:
    status, body = await call(
        client,
        "GET",
        f"{S}/{series_id}/occurrences",
        headers=AUTH,
        params={"from": start, "to": end},
        documented_as=OCCURRENCES,
    )
    assert status == 200, body
    found: list[Any] = body["occurrences"]
    return found


def without_link_urls(series: dict[str, Any]) -> dict[str, Any]:
    """A series as listed or fetched later: host link URLs are shown only when made."""
    return {**series, "host_links": [{**h, "url": None} for h in series["host_links"]]}


def berlin(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(BERLIN).strftime("%a %d.%m. %H:%M")


async def test_a_weekly_series_meets_at_19_berlin_on_both_sides_of_the_dst_change(
    client: Client,
) -> None:
    status, series = await create(client)
    assert status == 201
    assert series["rrule"] == "FREQ=WEEKLY;BYDAY=TU"
    assert [berlin(s) for s in series["next_starts"]] == [
        "Tue 13.10. 19:00",
        "Tue 20.10. 19:00",
        "Tue 27.10. 19:00",
        "Tue 03.11. 19:00",
        "Tue 10.11. 19:00",
    ]

    found = await occurrences(client, series["id"], "2026-10-19T00:00:00Z", "2026-10-29T00:00:00Z")

    assert [(o["starts_at"], o["status"]) for o in found] == [
        ("2026-10-20T17:00:00+00:00", "scheduled"),
        ("2026-10-27T18:00:00+00:00", "scheduled"),
    ]
    status, fetched = await call(
        client, "GET", f"{S}/{series['id']}", headers=AUTH, documented_as=ONE
    )
    assert (status, fetched) == (200, without_link_urls(series))


async def test_cancel_and_move_change_one_occurrence_and_the_calendar_says_so(
    client: Client,
) -> None:
    _, series = await create(client)
    sid = series["id"]
    found = await occurrences(client, sid, "2026-10-13T00:00:00Z", "2026-11-01T00:00:00Z")
    first, second, third = found
    path = f"{S}/{sid}/occurrences/{{}}"

    status, cancelled = await call(
        client,
        "PATCH",
        path.format(first["id"]),
        headers=AUTH,
        json={"cancelled": True},
        documented_as=OCCURRENCE,
    )
    assert (status, cancelled["status"]) == (200, "cancelled")
    moved_to = "2026-10-22T18:30:00+00:00"
    status, moved = await call(
        client,
        "PATCH",
        path.format(second["id"]),
        headers=AUTH,
        json={"starts_at": moved_to},
        documented_as=OCCURRENCE,
    )
    assert (status, moved["starts_at"], moved["moved"]) == (200, moved_to, True)

    after = await occurrences(client, sid, "2026-10-13T00:00:00Z", "2026-11-01T00:00:00Z")
    assert [(o["id"], o["starts_at"], o["status"]) for o in after] == [
        (first["id"], first["starts_at"], "cancelled"),
        (second["id"], moved_to, "scheduled"),
        (third["id"], third["starts_at"], "scheduled"),
    ]

    response = await client.get(f"/api/v1/feeds/series/{sid}.ics")
    assert response.status == 200
    assert response.content_type == "text/calendar"
    events = Calendar.from_ical(await response.read()).walk("VEVENT")
    main, override = events
    assert main.decoded("dtstart") == FIRST
    assert str(main["dtstart"].params["TZID"]) == "Europe/Berlin"
    assert main.decoded("duration") == timedelta(minutes=90)
    assert main["rrule"].to_ical() == b"FREQ=WEEKLY;BYDAY=TU"
    assert str(main["summary"]) == "Tuesday circle"
    assert str(main["url"]) == series["join_url"]
    assert series["join_url"] in str(main["description"])
    assert [d.dt for d in main["exdate"].dts] == [FIRST]
    assert str(override["uid"]) == str(main["uid"])
    assert override.decoded("recurrence-id") == FIRST + timedelta(weeks=1)
    assert override.decoded("dtstart") == datetime.fromisoformat(moved_to)


async def test_only_occurrences_not_begun_change_and_only_to_the_future(
    client: Client, clock: Clock
) -> None:
    _, series = await create(client)
    first = (await occurrences(client, series["id"], "2026-10-13T00:00:00Z", "2026-10-14T00:00Z"))[
        0
    ]
    path = f"{S}/{series['id']}/occurrences/{first['id']}"

    status, body = await call(
        client,
        "PATCH",
        path,
        headers=AUTH,
        json={"starts_at": "2026-09-01T10:00:00Z"},
        documented_as=OCCURRENCE,
    )
    assert (status, body["error"]["field"]) == (422, "starts_at")

    clock.now = datetime.fromisoformat(first["starts_at"]) + timedelta(minutes=1)
    status, body = await call(
        client, "PATCH", path, headers=AUTH, json={"cancelled": True}, documented_as=OCCURRENCE
    )
    assert (status, body["error"]["field"]) == (422, "cancelled")
    after = await occurrences(client, series["id"], "2026-10-13T00:00:00Z", "2026-10-14T00:00Z")
    assert after[0]["status"] == "live"


BAD_SERIES: dict[str, tuple[dict[str, Any], str]] = {
    "invalid rrule": ({**WEEKLY, "rrule": "FREQ=SOMETIMES"}, "rrule"),
    "rrule not a string": ({**WEEKLY, "rrule": 7}, "rrule"),
    "too frequent": ({**WEEKLY, "rrule": "FREQ=MINUTELY"}, "rrule"),
    "unknown time zone": ({**WEEKLY, "timezone": "Europe/Atlantis"}, "timezone"),
    "end before start": ({**WEEKLY, "ends_on": "2026-10-01"}, "ends_on"),
    "until before start": ({**WEEKLY, "rrule": "FREQ=WEEKLY;UNTIL=20260101T000000Z"}, "rrule"),
    "bad end date": ({**WEEKLY, "ends_on": "soon"}, "ends_on"),
    "capacity 0": ({**WEEKLY, "capacity": 0}, "capacity"),
    "capacity text": ({**WEEKLY, "capacity": "12"}, "capacity"),
    "public not bool": ({**WEEKLY, "public": "yes"}, "public"),
    "negative lobby": ({**WEEKLY, "lobby_minutes": -1}, "lobby_minutes"),
    "unknown field": ({**WEEKLY, "colour": "red"}, "colour"),
    "no title": ({k: v for k, v in WEEKLY.items() if k != "title"}, "title"),
    "naive start": ({**WEEKLY, "starts_at": "2026-10-13T19:00:00"}, "starts_at"),
}


@pytest.mark.parametrize(("body", "field"), BAD_SERIES.values(), ids=BAD_SERIES)
async def test_bad_series_are_a_422_naming_the_field_and_nothing_is_stored(
    client: Client, body: dict[str, Any], field: str
) -> None:
    status, refused = await create(client, body)

    assert status == 422
    assert refused["error"]["code"] == "invalid_field"
    assert refused["error"]["field"] == field
    status, listed = await call(client, "GET", S, headers=AUTH)
    assert listed == {"series": []}


async def test_a_bad_change_leaves_the_series_as_it_was(client: Client) -> None:
    _, series = await create(client)
    path = f"{S}/{series['id']}"

    status, refused = await call(
        client,
        "PATCH",
        path,
        headers=AUTH,
        json={"title": "New title", "rrule": "FREQ=NEVER"},
        documented_as=ONE,
    )
    assert (status, refused["error"]["field"]) == (422, "rrule")
    _, unchanged = await call(client, "GET", path, headers=AUTH, documented_as=ONE)
    assert unchanged == without_link_urls(series)

    status, changed = await call(
        client, "PATCH", path, headers=AUTH, json={"title": "New title"}, documented_as=ONE
    )
    assert (status, changed["title"], changed["rrule"]) == (200, "New title", WEEKLY["rrule"])


@pytest.mark.parametrize(
    ("method", "path", "documented_as"),
    [
        ("GET", f"{S}/nope", ONE),
        ("PATCH", f"{S}/nope", ONE),
        ("DELETE", f"{S}/nope", ONE),
        ("GET", f"{S}/nope/occurrences", OCCURRENCES),
    ],
)
async def test_unknown_series_is_a_json_404(
    client: Client, method: str, path: str, documented_as: str
) -> None:
    status, body = await call(
        client, method, path, headers=AUTH, json={"title": "x"}, documented_as=documented_as
    )
    assert (status, body["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize("occurrence_id", ["nope", "abc-123", "x" * 300])
async def test_unknown_occurrence_is_a_json_404(client: Client, occurrence_id: str) -> None:
    _, series = await create(client)
    # One second after a real start is no start of this series.
    real = (await occurrences(client, series["id"], "2026-10-13T00:00Z", "2026-10-14T00:00Z"))[0]
    for candidate in (occurrence_id, real["id"][:-1] + str(int(real["id"][-1]) ^ 1)):
        status, body = await call(
            client,
            "PATCH",
            f"{S}/{series['id']}/occurrences/{candidate}",
            headers=AUTH,
            json={"cancelled": True},
            documented_as=OCCURRENCE,
        )
        assert (status, body["error"]["code"]) == (404, "not_found")


async def test_deleted_series_is_gone(client: Client) -> None:
    _, series = await create(client)
    response = await client.delete(f"{S}/{series['id']}", headers=AUTH)
    assert response.status == 204
    status, _ = await call(client, "GET", f"{S}/{series['id']}", headers=AUTH, documented_as=ONE)
    assert status == 404


async def test_host_roster_links_can_be_added_revoked_and_rotated(client: Client) -> None:
    _, series = await create(client)
    sid = series["id"]
    status, ana = await call(
        client,
        "POST",
        f"{S}/{sid}/host-links",
        headers=AUTH,
        json={"name": "Ana"},
        documented_as="/api/v1/series/{series_id}/host-links",
    )
    assert (status, ana["name"]) == (201, "Ana")
    status, rotated = await call(
        client,
        "POST",
        f"{S}/{sid}/host-links/{ana['id']}/rotate",
        headers=AUTH,
        documented_as="/api/v1/series/{series_id}/host-links/{link_id}/rotate",
    )
    assert status == 200 and rotated["url"] != ana["url"] and rotated["id"] == ana["id"]
    first = series["host_links"][0]
    assert (await client.delete(f"{S}/{sid}/host-links/{first['id']}", headers=AUTH)).status == 204
    assert (await client.delete(f"{S}/{sid}/host-links/{first['id']}", headers=AUTH)).status == 404

    _, now = await call(client, "GET", f"{S}/{sid}", headers=AUTH, documented_as=ONE)
    # The roster lists names and ids; a link is shown only when made or rotated.
    assert [(link["name"], link["id"], link["url"]) for link in now["host_links"]] == [
        ("Ana", ana["id"], None)
    ]
    links = SqlCircleStore(client.app[DATABASE])
    rotated_match = await links.find_by_link(rotated["url"].rsplit("/", 1)[-1])
    assert rotated_match is not None and rotated_match.role is Role.HOST
    assert await links.find_by_link(ana["url"].rsplit("/", 1)[-1]) is None
    assert await links.find_by_link(first["url"].rsplit("/", 1)[-1]) is None


LINK = "/api/v1/series/{series_id}/host-links/{link_id}"


async def test_a_host_link_can_be_renamed_and_keeps_working_under_its_new_name(
    client: Client,
) -> None:
    _, series = await create(client)
    sid, first = series["id"], series["host_links"][0]
    status, renamed = await call(
        client,
        "PATCH",
        f"{S}/{sid}/host-links/{first['id']}",
        headers=AUTH,
        json={"name": "  Ana (Tuesdays) "},
        documented_as=LINK,
    )
    # Stored hashed: the answer cannot show the link, and the link itself does not change.
    assert (status, renamed["name"], renamed["url"]) == (200, "Ana (Tuesdays)", None)
    match = await SqlCircleStore(client.app[DATABASE]).find_by_link(first["url"].rsplit("/", 1)[-1])
    assert match is not None and match.role is Role.HOST
    _, now = await call(client, "GET", f"{S}/{sid}", headers=AUTH, documented_as=ONE)
    assert [link["name"] for link in now["host_links"]] == ["Ana (Tuesdays)"]

    for bad in ({"name": ""}, {"name": "x" * 101}, {"name": "a\u202eb"}, {"nom": "Ana"}, {}):
        status, body = await call(
            client,
            "PATCH",
            f"{S}/{sid}/host-links/{first['id']}",
            headers=AUTH,
            json=bad,
            documented_as=LINK,
        )
        assert (status, body["error"]["code"]) == (422, "invalid_field"), bad
    _, now = await call(client, "GET", f"{S}/{sid}", headers=AUTH, documented_as=ONE)
    assert [link["name"] for link in now["host_links"]] == ["Ana (Tuesdays)"]

    await client.delete(f"{S}/{sid}/host-links/{first['id']}", headers=AUTH)
    status, body = await call(
        client,
        "PATCH",
        f"{S}/{sid}/host-links/{first['id']}",
        headers=AUTH,
        json={"name": "Ana"},
        documented_as=LINK,
    )
    assert (status, body["error"]["code"]) == (404, "not_found")
    response = await client.patch(f"{S}/{sid}/host-links/{first['id']}", json={"name": "Ana"})
    assert response.status == 401


async def test_preview_gives_the_next_dates_of_a_monthly_nth_weekday_rule(client: Client) -> None:
    status, body = await call(
        client,
        "POST",
        "/api/v1/recurrence/preview",
        headers=AUTH,
        json={
            "starts_at": "2026-12-06T10:00:00+01:00",
            "timezone": "Europe/Berlin",
            "rrule": "FREQ=MONTHLY;BYDAY=1SU",
            "count": 3,
        },
    )
    assert status == 200
    assert [berlin(s) for s in body["starts"]] == [
        "Sun 06.12. 10:00",
        "Sun 03.01. 10:00",
        "Sun 07.02. 10:00",
    ]


async def test_admins_see_counts_not_names_unless_the_series_opts_in(
    client: Client, clock: Clock
) -> None:
    _, private = await create(client, {**WEEKLY, "public": False})
    _, named = await create(client, {**WEEKLY, "title": "Named", "attendance_names_visible": True})
    clock.now = FIRST.astimezone(UTC)
    links = SqlCircleStore(client.app[DATABASE], clock)
    for series in (private, named):
        match = await links.find_by_link(series["join_url"].rsplit("/", 1)[-1])
        assert match is not None and match.circle is not None
        seat = Seat("s1", "Sam", Role.PARTICIPANT, joined_at=clock.now)
        await links.save_state(CircleState(match.circle).with_seat(seat), now=clock.now)

    status, body = await call(
        client,
        "GET",
        "/api/v1/occurrences",
        headers=AUTH,
        params={"from": "2026-10-13T00:00:00Z", "to": "2026-10-14T00:00:00Z"},
    )
    assert status == 200
    seen = {o["title"]: (o["status"], o["present"], o["attendees"]) for o in body["occurrences"]}
    assert seen["Tuesday circle"] == ("live", 1, None)
    assert seen["Named"][:2] == ("live", 1)
    assert [a["display_name"] for a in seen["Named"][2]] == ["Sam"]


async def test_public_feeds_list_public_series_only(client: Client, clock: Clock) -> None:
    _, public = await create(client)
    _, private = await create(client, {**WEEKLY, "title": "Private", "public": False})
    _, monthly = await create(
        client,
        {
            **WEEKLY,
            "title": "First Sunday",
            "rrule": "FREQ=MONTHLY;BYDAY=1SU",
            "starts_at": "2026-11-01T10:00:00+01:00",
            "ends_on": "2027-03-01",
        },
    )

    response = await client.get("/api/v1/feeds/calendar.ics")
    calendar = Calendar.from_ical(await response.read())
    events = {str(e["summary"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {"Tuesday circle", "First Sunday"}
    assert events["First Sunday"]["rrule"]["UNTIL"][0] == datetime(
        2027, 3, 1, 23, 59, 59, tzinfo=BERLIN
    ).astimezone(UTC)
    assert {str(tz["tzid"]) for tz in calendar.walk("VTIMEZONE")} == {"Europe/Berlin"}
    assert (await client.get(f"/api/v1/feeds/series/{private['id']}.ics")).status == 404

    clock.now = FIRST.astimezone(UTC) - timedelta(days=2)  # directories show the week ahead
    status, meetings = await call(client, "GET", "/api/v1/feeds/meeting-guide.json")
    assert status == 200
    assert meetings == [
        {
            "name": "Tuesday circle",
            "slug": public["id"],
            "day": [2],
            "time": "19:00",
            "end_time": "20:30",
            "timezone": "Europe/Berlin",
            "conference_url": public["join_url"],
            "conference_url_notes": meetings[0]["conference_url_notes"],
            "notes": "Peer support, audio only.",
            "updated": meetings[0]["updated"],
        }
    ]
    assert monthly["id"] not in json.dumps(meetings)


def test_cli_creates_and_revokes_admin_tokens_and_purges_attendance(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "HEARTH_DATABASE_URL": ""}

    def hearth(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", *args, "--data-dir", str(tmp_path)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    created = hearth("admin", "create-token")
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    token_id, token = fields["id"].strip(), fields["token"].strip()
    db = (tmp_path / "hearth.db").read_bytes()
    assert token.encode() not in db  # only its hash is kept

    assert hearth("admin", "revoke-token", token_id).returncode == 0
    assert hearth("admin", "revoke-token", token_id).returncode == 1
    purged = hearth("db", "purge", "--days", "7")
    assert purged.returncode == 0 and "purged 0" in purged.stdout


async def test_the_purge_timer_runs_at_start(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN, attendance_days=30)
    clock = Clock()
    clock.now = FIRST.astimezone(UTC)
    first = await aiohttp_client(create_app(settings, clock=clock))
    _, series = await create(first)
    links = SqlCircleStore(first.app[DATABASE], clock)
    match = await links.find_by_link(series["join_url"].rsplit("/", 1)[-1])
    assert match is not None and match.circle is not None
    seat = Seat("s1", "Sam", Role.PARTICIPANT, joined_at=clock.now)
    await links.save_state(CircleState(match.circle).with_seat(seat), now=clock.now)
    await links.save_state(CircleState(match.circle), now=clock.now + timedelta(hours=1))
    await first.close()

    clock.now += timedelta(days=31)
    second = await aiohttp_client(create_app(settings, clock=clock))
    assert await SqlCircleStore(second.app[DATABASE]).all_seats(match.circle.id) == []


async def test_an_occurrence_cannot_be_moved_onto_its_neighbour(client: Client) -> None:
    _, series = await create(client)
    sid = series["id"]
    first, second = await occurrences(client, sid, "2026-10-13T00:00:00Z", "2026-10-21T00:00:00Z")
    path = f"{S}/{sid}/occurrences/{second['id']}"
    # An hour after the first one starts: inside its 90 minutes, so the link would be ambiguous.
    clash = (datetime.fromisoformat(first["starts_at"]) + timedelta(hours=1)).isoformat()
    status, refused = await call(
        client, "PATCH", path, headers=AUTH, json={"starts_at": clash}, documented_as=OCCURRENCE
    )
    assert status == 422
    assert refused["error"]["field"] == "starts_at"
    assert first["starts_at"][:16] in refused["error"]["message"]
    unchanged = await occurrences(client, sid, "2026-10-13T00:00:00Z", "2026-10-21T00:00:00Z")
    assert [o["starts_at"] for o in unchanged] == [first["starts_at"], second["starts_at"]]
    # Once the first is cancelled, its slot is free to take.
    status, _ = await call(
        client,
        "PATCH",
        f"{S}/{sid}/occurrences/{first['id']}",
        headers=AUTH,
        json={"cancelled": True},
        documented_as=OCCURRENCE,
    )
    assert status == 200
    status, moved = await call(
        client, "PATCH", path, headers=AUTH, json={"starts_at": clash}, documented_as=OCCURRENCE
    )
    assert (status, moved["starts_at"]) == (200, clash)


# --- inputs that used to 500, block, or be taken wrongly -------------------------------------

EXTREME_SERIES: dict[str, tuple[dict[str, Any], str]] = {
    "year 1": ({**WEEKLY, "starts_at": "0001-01-01T00:00:00+01:00"}, "starts_at"),
    "year 1 in UTC": ({**WEEKLY, "starts_at": "0001-01-01T00:00:00Z"}, "starts_at"),
    "year 9999": ({**WEEKLY, "starts_at": "9999-12-31T23:00:00-05:00"}, "starts_at"),
    "negative interval": ({**WEEKLY, "rrule": "FREQ=WEEKLY;INTERVAL=-1"}, "rrule"),
    "interval 0": ({**WEEKLY, "rrule": "FREQ=WEEKLY;INTERVAL=0"}, "rrule"),
    "until 9999": ({**WEEKLY, "rrule": "FREQ=WEEKLY;BYDAY=TU;UNTIL=99991231"}, "rrule"),
    "ends_on 9999": ({**WEEKLY, "ends_on": "9999-12-31"}, "ends_on"),
    "daily rule that never matches": (
        {**WEEKLY, "rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"},
        "rrule",
    ),
    "hourly by BYHOUR list": ({**WEEKLY, "rrule": "FREQ=DAILY;BYHOUR=19,20"}, "rrule"),
    "every minute by BYMINUTE": (
        {**WEEKLY, "duration_minutes": 1, "rrule": "FREQ=DAILY;BYMINUTE=0,1,2,3"},
        "rrule",
    ),
    "BYHOUR other than the start": ({**WEEKLY, "rrule": "FREQ=WEEKLY;BYHOUR=20"}, "rrule"),
    "start the rule does not give": ({**WEEKLY, "rrule": "FREQ=WEEKLY;BYDAY=WE"}, "starts_at"),
    "offset not the zone's": ({**WEEKLY, "starts_at": "2026-10-13T19:00:00+01:00"}, "starts_at"),
    "second 02:30 of the fall-back night": (
        {**WEEKLY, "starts_at": "2026-10-25T02:30:00+01:00", "rrule": "FREQ=WEEKLY;BYDAY=SU"},
        "starts_at",
    ),
    "bidi override in the title": ({**WEEKLY, "title": "Circle \u202e"}, "title"),
}


@pytest.mark.parametrize(("body", "field"), EXTREME_SERIES.values(), ids=EXTREME_SERIES)
async def test_extreme_dates_and_rules_are_a_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    status, refused = await call(client, "POST", S, headers=AUTH, json=body)
    assert (status, refused["error"]["code"], refused["error"]["field"]) == (
        422,
        "invalid_field",
        field,
    )
    status, previewed = await call(
        client,
        "POST",
        "/api/v1/recurrence/preview",
        headers=AUTH,
        json={k: v for k, v in body.items() if k in ("starts_at", "timezone", "rrule", "ends_on")},
    )
    if field != "title":
        assert (status, previewed["error"]["field"]) == (422, field)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "0001-01-01T00:00:00Z"},
        {"from": "0001-01-01T00:00:00+01:00"},
        {"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:00:00Z"},
        {"from": "2026-10-01T00:00:00Z", "to": "9999-12-31T23:59:59-05:00"},
    ],
)
async def test_ranges_reaching_far_years_are_a_422(client: Client, params: dict[str, str]) -> None:
    _, series = await create(client)
    for path, documented in (
        (f"{S}/{series['id']}/occurrences", OCCURRENCES),
        ("/api/v1/occurrences", "/api/v1/occurrences"),
    ):
        status, body = await call(
            client, "GET", path, headers=AUTH, params=params, documented_as=documented
        )
        assert (status, body["error"]["code"]) == (422, "invalid_field"), (path, params)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "yesterday"}, "from", "'from' is not an ISO 8601 date-time."),
        ({"from": "soon", "to": "later"}, "from", "'from' is not an ISO 8601 date-time."),
        ({"to": "2026-10-20T00:00:00"}, "to", "'to' needs an offset, e.g. +01:00 or Z."),
        (
            {"from": "0001-01-01T00:00:00+01:00"},
            "from",
            f"'from' must be in the years {FIRST_YEAR} to {LAST_YEAR}.",
        ),
        (
            {"from": "2026-10-01T00:00:00Z", "to": "9999-12-31T23:59:59-05:00"},
            "to",
            f"'to' must be in the years {FIRST_YEAR} to {LAST_YEAR}.",
        ),
        (
            {"from": "2026-10-20T00:00:00Z", "to": "2026-10-13T00:00:00Z"},
            "to",
            "'to' must be after 'from'.",
        ),
        # `from` defaults to now (2026-10-01T12:00Z).
        ({"to": "2026-09-30T00:00:00Z"}, "to", "'to' must be after 'from'."),
        (
            {"from": "2026-10-13T00:00:00Z", "to": "2027-11-18T00:00:00Z"},
            "to",
            "The range may span at most 400 days.",
        ),
    ],
)
async def test_a_bad_range_is_refused_with_its_stable_code_field_and_message(
    client: Client, params: dict[str, str], field: str, message: str
) -> None:
    _, series = await create(client)
    for path, documented in (
        (f"{S}/{series['id']}/occurrences", OCCURRENCES),
        ("/api/v1/occurrences", "/api/v1/occurrences"),
    ):
        status, body = await call(
            client, "GET", path, headers=AUTH, params=params, documented_as=documented
        )
        assert status == 422, (path, params)
        assert body["error"] == {"code": "invalid_field", "field": field, "message": message}


async def test_a_range_defaults_to_28_days_from_now_or_from_from(client: Client) -> None:
    _, series = await create(client)  # Tuesdays from 2026-10-13 19:00 Berlin; now is 10-01
    path = f"{S}/{series['id']}/occurrences"
    status, body = await call(client, "GET", path, headers=AUTH, documented_as=OCCURRENCES)
    assert status == 200
    assert [o["starts_at"][:10] for o in body["occurrences"]] == [
        "2026-10-13",
        "2026-10-20",
        "2026-10-27",
    ]
    status, body = await call(
        client,
        "GET",
        path,
        headers=AUTH,
        params={"from": "2026-10-21T00:00:00+02:00", "unknown": "ignored"},
        documented_as=OCCURRENCES,
    )
    assert status == 200
    assert [o["starts_at"][:10] for o in body["occurrences"]] == [
        "2026-10-27",
        "2026-11-03",
        "2026-11-10",
        "2026-11-17",
    ]


async def test_the_document_lists_the_range_parameters_from_the_query_model(
    client: Client,
) -> None:
    _, document = await call(client, "GET", "/api/v1/openapi.json")
    for path in ("/api/v1/occurrences", OCCURRENCES):
        parameters = document["paths"][path]["get"]["parameters"]
        query = {p["name"]: p for p in parameters if p["in"] == "query"}
        assert set(query) == {"from", "to"}, path
        for parameter in query.values():
            assert parameter["required"] is False
            assert parameter["schema"] == {"type": "string", "format": "date-time"}
        assert "400 days" in query["to"]["description"]


async def test_the_first_01_30_of_a_fall_back_night_is_the_instant_everything_gives(
    client: Client,
) -> None:
    # New York falls back on 2026-11-01: 01:30 happens at 05:30 and again at 06:30 UTC.
    body = {
        **WEEKLY,
        "starts_at": "2026-11-01T01:30:00-04:00",
        "timezone": "America/New_York",
        "rrule": "FREQ=WEEKLY;BYDAY=SU",
    }
    status, series = await create(client, body)
    assert status == 201, series
    found = await occurrences(client, series["id"], "2026-11-01T00:00:00Z", "2026-11-09T00:00Z")
    asked = {k: body[k] for k in ("starts_at", "timezone", "rrule")}
    _, preview = await call(
        client, "POST", "/api/v1/recurrence/preview", headers=AUTH, json={**asked, "count": 1}
    )
    first = "2026-11-01T05:30:00+00:00"
    assert series["starts_at"] == series["next_starts"][0] == found[0]["starts_at"] == first
    assert preview["starts"] == [first]

    status, refused = await create(client, {**body, "starts_at": "2026-11-01T01:30:00-05:00"})
    assert (status, refused["error"]["field"]) == (422, "starts_at")


async def test_titles_keep_the_zero_width_joiner_of_persian_words_and_emoji(
    client: Client,
) -> None:
    for title in (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "Family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    ):
        status, series = await create(client, {**WEEKLY, "title": title})
        assert (status, series["title"]) == (201, title)


async def test_a_list_cut_at_its_cap_says_so(client: Client) -> None:
    daily = {**WEEKLY, "rrule": "FREQ=DAILY", "duration_minutes": 30}
    for n in range(13):  # 13 daily series x 400 days > 5000
        status, _ = await create(client, {**daily, "title": f"Daily {n}"})
        assert status == 201
    status, body = await call(
        client,
        "GET",
        "/api/v1/occurrences",
        headers=AUTH,
        params={"from": "2026-10-13T00:00:00Z", "to": "2027-11-17T00:00:00Z"},
    )
    assert status == 200
    assert (len(body["occurrences"]), body["truncated"]) == (5000, True)
    status, body = await call(
        client,
        "GET",
        "/api/v1/occurrences",
        headers=AUTH,
        params={"from": "2026-10-13T00:00:00Z", "to": "2026-10-20T00:00:00Z"},
    )
    assert (len(body["occurrences"]), body["truncated"]) == (13 * 7, False)


# --- edits keep what still fits ----------------------------------------------------------------


async def cancel_and_move(client: Client, sid: str) -> tuple[Any, Any]:
    found = await occurrences(client, sid, "2026-10-13T00:00:00Z", "2026-11-11T00:00:00Z")
    path = f"{S}/{sid}/occurrences/{{}}"
    cancelled, moved = found[1], found[3]
    await call(
        client,
        "PATCH",
        path.format(cancelled["id"]),
        headers=AUTH,
        json={"cancelled": True},
        documented_as=OCCURRENCE,
    )
    moved_to = datetime.fromisoformat(moved["starts_at"]) + timedelta(hours=2)
    status, moved = await call(
        client,
        "PATCH",
        path.format(moved["id"]),
        headers=AUTH,
        json={"starts_at": moved_to.isoformat()},
        documented_as=OCCURRENCE,
    )
    assert status == 200, moved
    return cancelled, moved


async def patch(client: Client, sid: str, change: dict[str, Any]) -> Any:
    status, body = await call(
        client, "PATCH", f"{S}/{sid}", headers=AUTH, json=change, documented_as=ONE
    )
    assert status == 200, body
    return body


async def test_a_longer_duration_keeps_cancellations_and_moves(client: Client) -> None:
    _, series = await create(client)
    cancelled, moved = await cancel_and_move(client, series["id"])

    changed = await patch(client, series["id"], {"duration_minutes": 120})

    assert changed["not_kept"] == []
    after = await occurrences(client, series["id"], "2026-10-13T00:00:00Z", "2026-11-11T00:00Z")
    by_id = {o["id"]: o for o in after}
    assert by_id[cancelled["id"]]["status"] == "cancelled"
    assert by_id[moved["id"]]["starts_at"] == moved["starts_at"]
    assert {o["ends_at"] for o in after} == {
        (datetime.fromisoformat(o["starts_at"]) + timedelta(minutes=120)).isoformat() for o in after
    }


async def test_an_earlier_end_keeps_what_is_before_it_and_lists_what_it_cut(
    client: Client,
) -> None:
    _, series = await create(client)
    cancelled, moved = await cancel_and_move(client, series["id"])

    # Ends after the cancelled one (20.10.) and before the moved one (03.11.).
    changed = await patch(client, series["id"], {"ends_on": "2026-10-28"})

    assert [(d["original_start"], d["change"]) for d in changed["not_kept"]] == [
        (moved["original_start"], "moved")
    ]
    after = await occurrences(client, series["id"], "2026-10-13T00:00:00Z", "2026-11-11T00:00Z")
    assert [(o["id"], o["status"]) for o in after] == [
        (after[0]["id"], "scheduled"),
        (cancelled["id"], "cancelled"),
        (after[2]["id"], "scheduled"),
    ]


async def test_a_new_weekday_drops_every_change_and_says_so_and_nothing_comes_back(
    client: Client,
) -> None:
    _, series = await create(client)
    cancelled, moved = await cancel_and_move(client, series["id"])

    changed = await patch(
        client,
        series["id"],
        {"rrule": "FREQ=WEEKLY;BYDAY=WE", "starts_at": "2026-10-14T19:00:00+02:00"},
    )

    assert [(d["original_start"], d["change"]) for d in changed["not_kept"]] == [
        (cancelled["original_start"], "cancelled"),
        (moved["original_start"], "moved"),
    ]
    # Changing back does not bring the cancellation back unasked.
    back = await patch(
        client, series["id"], {"rrule": WEEKLY["rrule"], "starts_at": WEEKLY["starts_at"]}
    )
    assert back["not_kept"] == []
    after = await occurrences(client, series["id"], "2026-10-13T00:00:00Z", "2026-11-11T00:00Z")
    assert all(o["status"] == "scheduled" and not o["moved"] for o in after)


async def test_a_move_the_new_duration_would_overlap_is_put_back_and_listed(
    client: Client,
) -> None:
    daily = {
        **WEEKLY,
        "rrule": "FREQ=DAILY",
        "duration_minutes": 60,
        "lobby_minutes": 0,
        "grace_minutes": 0,
    }
    _, series = await create(client, daily)
    found = await occurrences(client, series["id"], "2026-10-14T00:00:00Z", "2026-10-15T00:00Z")
    moved_to = datetime.fromisoformat(found[0]["starts_at"]) + timedelta(hours=12)
    status, moved = await call(
        client,
        "PATCH",
        f"{S}/{series['id']}/occurrences/{found[0]['id']}",
        headers=AUTH,
        json={"starts_at": moved_to.isoformat()},
        documented_as=OCCURRENCE,
    )
    assert status == 200, moved

    changed = await patch(client, series["id"], {"duration_minutes": 13 * 60})

    assert [(d["original_start"], d["change"]) for d in changed["not_kept"]] == [
        (moved["original_start"], "moved")
    ]
    after = await occurrences(client, series["id"], "2026-10-14T00:00:00Z", "2026-10-15T00:00Z")
    assert after[0]["starts_at"] == moved["original_start"]
