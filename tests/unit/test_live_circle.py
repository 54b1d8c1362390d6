"""The live circle persists each decision before anyone hears of it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from rooms import machine, snapshot
from rooms.errors import RoomError
from rooms.machine import AuditEntry
from rooms.model import Circle, CircleState, Role
from signaling.audio import SharedMixAudioPath
from signaling.hub import CircleHub, Command, LiveCircle, MisroutedCircle
from signaling.store import LinkMatch

NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
CIRCLE = Circle(
    id="c1", title="Circle", starts_at=NOW, duration_minutes=60, timezone="Europe/Berlin"
)


class MemoryStore:
    """A stand-in for the database, recording what was saved and able to fail."""

    def __init__(self) -> None:
        self.saved: list[CircleState] = []
        self.audit: list[AuditEntry] = []
        self.fail = False
        self.links = {"host-token": LinkMatch(CIRCLE, Role.HOST)}

    async def find_by_link(self, token: str) -> LinkMatch | None:
        return self.links.get(token)

    async def load_state(self, match: LinkMatch) -> CircleState | None:
        return self.saved[-1] if self.saved else None

    async def save_state(
        self, state: CircleState, *, now: datetime, audit: Sequence[AuditEntry] = ()
    ) -> None:
        if self.fail:
            raise OSError("disk full")
        self.saved.append(state)
        self.audit.extend(audit)


class Inbox:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.store = store
        self.saved_when_sent: list[int] = []
        self.closed: int | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if self.store is not None:
            self.saved_when_sent.append(len(self.store.saved))

    def close_soon(self, code: int) -> None:
        self.closed = code

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]


def join_command(seat_id: str, role: Role, muted: bool = False) -> Command:
    return lambda s: machine.join(
        s, seat_id=seat_id, display_name=seat_id.title(), role=role, muted=muted, now=NOW
    )


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def live(store: MemoryStore) -> LiveCircle:
    return LiveCircle(CircleState(CIRCLE), store, SharedMixAudioPath(run_clock=False), lambda: NOW)


async def test_a_joiner_gets_the_circle_first_and_the_others_are_told(
    live: LiveCircle, store: MemoryStore
) -> None:
    ana, sam = Inbox(store), Inbox(store)
    await live.join("ana", ana, join_command("ana", Role.HOST))
    await live.join("sam", sam, join_command("sam", Role.PARTICIPANT))
    assert ana.types() == ["joined", "participant_joined"]
    assert sam.types() == ["joined"]
    assert [p["display_name"] for p in sam.messages[0]["participants"]] == ["Ana", "Sam"]
    # Each message went out only after the state it describes was saved.
    assert ana.saved_when_sent == [1, 2]


async def test_when_saving_fails_nothing_changes_and_nobody_is_told(
    live: LiveCircle, store: MemoryStore
) -> None:
    ana, sam = Inbox(), Inbox()
    await live.join("ana", ana, join_command("ana", Role.HOST))
    await live.join("sam", sam, join_command("sam", Role.PARTICIPANT))
    before = live.state
    before_data = snapshot.to_data(before)  # by value: in-place changes would show
    store.fail = True
    with pytest.raises(OSError):
        await live.apply(lambda s: machine.mute_other(s, actor_id="ana", target_id="sam"))
    assert live.state == before
    assert snapshot.to_data(live.state) == before_data
    assert "participant_updated" not in ana.types() + sam.types()
    assert live.audio.is_audible("sam")  # type: ignore[attr-defined]


async def test_a_refused_command_changes_nothing(live: LiveCircle) -> None:
    ana, sam = Inbox(), Inbox()
    await live.join("ana", ana, join_command("ana", Role.HOST))
    await live.join("sam", sam, join_command("sam", Role.PARTICIPANT))
    before = live.state
    before_data = snapshot.to_data(before)  # by value: in-place changes would show
    with pytest.raises(RoomError):
        await live.apply(lambda s: machine.mute_other(s, actor_id="sam", target_id="ana"))
    assert live.state == before
    assert snapshot.to_data(live.state) == before_data
    assert ana.types() == ["joined", "participant_joined"]


async def test_a_host_mute_reaches_everyone_and_gates_the_audio(live: LiveCircle) -> None:
    ana, sam = Inbox(), Inbox()
    await live.join("ana", ana, join_command("ana", Role.HOST))
    await live.join("sam", sam, join_command("sam", Role.PARTICIPANT))
    await live.apply(lambda s: machine.mute_other(s, actor_id="ana", target_id="sam"))
    for inbox in (ana, sam):
        update = inbox.messages[-1]
        assert update["type"] == "participant_updated"
        assert (update["participant"]["muted"], update["by"]) == (True, "ana")
    assert not live.audio.is_audible("sam")  # type: ignore[attr-defined]


async def test_an_unknown_link_and_an_emptied_circle(store: MemoryStore) -> None:
    hub = CircleHub(store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW)
    with pytest.raises(RoomError) as refused:
        await hub.circle_for_link("nope")
    assert refused.value.code == "circle_not_open"
    live, role = await hub.circle_for_link("host-token")
    assert role is Role.HOST
    await live.join("ana", Inbox(), join_command("ana", Role.HOST))
    await live.leave("ana")
    await hub.release_if_empty(live)
    assert hub.live_circles() == []


async def test_a_worker_opens_only_the_circles_it_hosts(store: MemoryStore) -> None:
    # hearth serve --workers N: a circle lives in one process, never in two.
    elsewhere = CircleHub(
        store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW, hosts=lambda _: False
    )
    with pytest.raises(MisroutedCircle):
        await elsewhere.circle_for_link("host-token")
    with pytest.raises(RoomError):  # an unknown link is still refused as by one process
        await elsewhere.circle_for_link("nope")
    assert elsewhere.live_circles() == []
    here = CircleHub(
        store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW, hosts={"c1"}.__contains__
    )
    live, _ = await here.circle_for_link("host-token")
    assert here.live_circles() == [live]
    await here.close()


async def test_a_dropped_connection_shows_reconnecting_and_the_seat_token_takes_it_back(
    live: LiveCircle,
) -> None:
    from signaling.session import digest

    ana, sam = Inbox(), Inbox()
    await live.join("ana", ana, join_command("ana", Role.HOST))
    await live.join(
        "sam",
        sam,
        lambda s: machine.join(
            s,
            seat_id="sam",
            display_name="Sam",
            role=Role.PARTICIPANT,
            muted=False,
            now=NOW,
            token_hash=digest("secret"),
        ),
        seat_token="secret",
    )
    assert sam.messages[0]["seat_token"] == "secret"
    await live.disconnect("sam", sam)
    update = ana.messages[-1]
    assert update["type"] == "participant_updated"
    assert update["participant"]["connection"] == "reconnecting"
    assert "participant_left" not in ana.types()

    back = Inbox()
    held = await live.join(
        "other-id",
        back,
        lambda s: machine.join(
            s,
            seat_id="other-id",
            display_name="Whoever",
            role=Role.PARTICIPANT,
            muted=True,
            now=NOW,
            resume_hash=digest("secret"),
        ),
        seat_token="new",
        resume_token="secret",
    )
    assert held == "sam"
    assert back.messages[0]["type"] == "joined" and back.messages[0]["seat_token"] == "secret"
    assert back.messages[0]["you"]["muted"] is False
    assert ana.messages[-1]["participant"]["connection"] == "connected"


async def test_the_lobby_waits_is_admitted_and_the_removed_are_closed(live: LiveCircle) -> None:
    ana, sam = Inbox(), Inbox()
    await live.join("ana", ana, join_command("ana", Role.HOST))
    await live.apply(lambda s: machine.set_lobby(s, actor_id="ana", enabled=True, now=NOW))
    await live.join("sam", sam, join_command("sam", Role.PARTICIPANT))
    assert sam.types() == ["waiting"] and sam.messages[0]["position"] == 1
    assert ana.messages[-1]["type"] == "moderation_updated"
    assert [w["display_name"] for w in ana.messages[-1]["moderation"]["lobby"]] == ["Sam"]

    await live.apply(lambda s: machine.admit(s, actor_id="ana", waiting_id="sam", now=NOW))
    assert sam.types()[-1] == "joined"
    assert "participant_joined" in ana.types()

    await live.apply(lambda s: machine.remove(s, actor_id="ana", target_id="sam", now=NOW))
    assert sam.messages[-1] == {
        "type": "error",
        "code": "removed",
        "message": "A host removed you from this circle.",
        "ref": None,
    }
    assert sam.closed == 4403
    assert ana.messages[-2:][0]["type"] in ("participant_left", "moderation_updated")
    assert "sam" not in live.state.seats
