"""The live circle stores each decision before anyone hears of it (in groups), goes on in
memory while storage is away, and the hub keeps one live circle per circle id."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from rooms import machine, snapshot
from rooms.errors import RoomError
from rooms.machine import AuditEntry
from rooms.model import Circle, CircleSettings, CircleState, Role
from signaling.audio import SharedMixAudioPath
from signaling.hub import CircleHub, Command, LiveCircle, MisroutedCircle
from signaling.store import LeaseLost, LinkMatch, StateWrite, StorageUnavailable

NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
CIRCLE = Circle(
    id="c1", title="Circle", starts_at=NOW, duration_minutes=60, timezone="Europe/Berlin"
)


class MemoryStore:
    """A stand-in for the database, recording what was saved and able to fail.

    Each write and each load takes ``delay`` seconds (a real database takes time, which is
    when commands and arrivals pile up); ``away`` makes every call fail as an outage does.
    """

    def __init__(self) -> None:
        self.saved: list[CircleState] = []
        self.audit: list[AuditEntry] = []
        self.transactions = 0
        self.loads = 0
        self.away = False
        self.delay = 0.0
        self.links = {
            "host-token": LinkMatch(CIRCLE, Role.HOST),
            "join-token": LinkMatch(CIRCLE, Role.PARTICIPANT),
        }

    async def _wait(self) -> None:
        await asyncio.sleep(self.delay)
        if self.away:
            raise StorageUnavailable("connection refused")

    async def find_by_link(self, token: str) -> LinkMatch | None:
        await self._wait()
        return self.links.get(token)

    async def load_state(self, match: LinkMatch) -> CircleState | None:
        self.loads += 1
        await self._wait()
        return self.saved[-1] if self.saved else None

    async def save_state(
        self, state: CircleState, *, now: datetime, audit: Sequence[AuditEntry] = ()
    ) -> None:
        await self.save_batch([StateWrite(state, now, tuple(audit))])

    async def save_batch(self, writes: Sequence[StateWrite]) -> None:
        await self._wait()
        self.transactions += 1
        for write in writes:
            self.saved.append(write.state)
            self.audit.extend(write.audit)


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


async def test_while_storage_is_away_a_host_mute_still_holds_and_is_stored_when_it_returns(
    live: LiveCircle, store: MemoryStore
) -> None:
    ana, sam = Inbox(), Inbox()
    await live.join("ana", ana, join_command("ana", Role.HOST))
    await live.join("sam", sam, join_command("sam", Role.PARTICIPANT))
    store.away = True
    # Safety first: the mute silences Sam and everyone is told, storage or not.
    await live.apply(lambda s: machine.mute_other(s, actor_id="ana", target_id="sam"))
    assert not live.audio.is_audible("sam")  # type: ignore[attr-defined]
    assert ana.messages[-1]["type"] == "participant_updated"
    assert live.storage_away and live.stats.published_unstored == 1
    await live.apply(lambda s: machine.remove(s, actor_id="ana", target_id="sam", now=NOW))
    assert sam.closed == 4403
    # A newcomer cannot be let in: nothing about them could be kept.
    with pytest.raises(StorageUnavailable):
        await live.join("kim", Inbox(), join_command("kim", Role.PARTICIPANT))
    saved_before = len(store.saved)
    store.away = False
    async with asyncio.timeout(5):
        while live.storage_away:
            await asyncio.sleep(0.02)
    # Both decisions reached storage, in order, in one transaction; nothing was lost.
    assert len(store.saved) == saved_before + 2
    assert store.saved[-2].seats["sam"].muted
    assert "sam" not in store.saved[-1].seats
    assert [e.action for e in store.audit][-2:] == ["mute", "remove"]
    assert not live.is_empty() and live.stats.outages == 1


async def test_commands_that_come_while_a_write_is_in_flight_share_the_next_transaction(
    live: LiveCircle, store: MemoryStore
) -> None:
    ana, sam = Inbox(store), Inbox(store)
    await live.join("ana", ana, join_command("ana", Role.HOST))
    await live.join("sam", sam, join_command("sam", Role.PARTICIPANT))
    store.delay = 0.01
    before = store.transactions
    futures = []
    for i in range(200):
        _, done = live.submit(
            lambda s, muted=(i % 2 == 0): machine.set_own_mute(s, seat_id="sam", muted=muted)
        )
        futures.append(done)
        if i == 0:
            await asyncio.sleep(0.002)  # the first one's write is in flight
    await asyncio.gather(*futures)
    # 200 toggles, 2 transactions: the first alone, the other 199 together, as one write
    # of their last state (nothing else of them is stored: no audit entry, the same seats).
    assert store.transactions - before == 2
    assert len(store.saved) == 2 + 2
    assert store.saved[-1].seats["sam"].muted is False  # the 200th toggle: unmuted
    # Every toggle was told, in order, and only after it was stored.
    toggles = [m for m in sam.messages if m["type"] == "participant_updated"]
    assert [m["participant"]["muted"] for m in toggles] == [i % 2 == 0 for i in range(200)]
    stored_when_told = sam.saved_when_sent[-200:]
    assert stored_when_told[0] == 3 and set(stored_when_told[1:]) == {2 + 2}


async def test_a_refused_command_in_a_burst_changes_nothing_and_the_rest_are_stored(
    live: LiveCircle, store: MemoryStore
) -> None:
    await live.join("ana", Inbox(), join_command("ana", Role.HOST))
    await live.join("sam", Inbox(), join_command("sam", Role.PARTICIPANT))
    store.delay = 0.01
    _, first = live.submit(lambda s: machine.mute_other(s, actor_id="ana", target_id="sam"))
    with pytest.raises(RoomError):
        live.submit(lambda s: machine.mute_other(s, actor_id="sam", target_id="ana"))
    _, last = live.submit(lambda s: machine.set_lock(s, actor_id="ana", locked=True))
    await asyncio.gather(first, last)
    assert store.saved[-1].seats["sam"].muted and store.saved[-1].locked
    assert not store.saved[-1].seats["ana"].muted


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
    # Sam was unmuted before the drop; the seat comes back muted (nobody on air unasked), and
    # the others see it so.
    assert back.messages[0]["you"]["muted"] is True
    assert back.messages[0]["needs_support"] is False
    assert ana.messages[-1]["participant"]["connection"] == "connected"
    assert ana.messages[-1]["participant"]["muted"] is True


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


async def test_arrivals_at_the_same_moment_share_one_load_and_one_circle(
    store: MemoryStore,
) -> None:
    hub = CircleHub(store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW)
    store.delay = 0.02
    arrivals = await asyncio.gather(*(hub.arrive("host-token") for _ in range(4)))
    assert len({id(a.live) for a in arrivals}) == 1
    assert store.loads == 1
    for arrival in arrivals:
        await hub.arrived(arrival)
    assert hub.is_idle()
    await hub.close()


async def test_a_refused_join_does_not_close_the_circle_someone_else_is_joining(
    store: MemoryStore,
) -> None:
    hub = CircleHub(store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW)
    store.delay = 0.02
    host, refused = await asyncio.gather(hub.arrive("host-token"), hub.arrive("host-token"))
    # The refused one's clean-up runs first, while the other host is still arriving.
    await hub.arrived(refused)
    assert hub.live_circles() == [host.live]
    await host.live.join("ana", Inbox(), join_command("ana", Role.HOST))
    await hub.arrived(host)
    later = await hub.arrive("join-token")
    assert later.live is host.live
    await hub.arrived(later)
    await host.live.leave("ana")
    await hub.release_if_empty(host.live)
    assert hub.is_idle()


async def test_someone_arriving_during_the_hosts_arrival_waits_for_it_instead_of_a_refusal(
    store: MemoryStore,
) -> None:
    hub = CircleHub(store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW)
    store.delay = 0.02

    async def join(token: str, seat_id: str, role: Role) -> str:
        async with hub.arrival(token) as arrival:
            await asyncio.sleep(0.05 if role is Role.HOST else 0)  # the host is slower
            return await arrival.live.join(seat_id, Inbox(), join_command(seat_id, role))

    host = asyncio.ensure_future(join("host-token", "ana", Role.HOST))
    await asyncio.sleep(0)  # the host's arrival is in flight
    sam = await join("join-token", "sam", Role.PARTICIPANT)
    assert (await host, sam) == ("ana", "sam")
    assert set(hub.live_circles()[0].state.seats) == {"ana", "sam"}
    await hub.close()


async def test_a_release_in_progress_is_waited_for_before_the_circle_loads_again(
    store: MemoryStore,
) -> None:
    hub = CircleHub(store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW)
    first = await hub.arrive("host-token")
    await first.live.join("ana", Inbox(), join_command("ana", Role.HOST))
    await hub.arrived(first)
    store.delay = 0.05  # Ana's leave is still being written while Kim arrives
    leaving = asyncio.ensure_future(first.live.leave("ana"))
    await asyncio.sleep(0.01)
    releasing = asyncio.ensure_future(hub.release_if_empty(first.live))
    again = await hub.arrive("host-token")
    await asyncio.gather(leaving, releasing)
    # Kim has the circle Ana left: the one loaded after Ana's leave was stored.
    assert again.live is hub.live_circles()[0]
    assert "ana" not in again.live.decided.seats
    await hub.arrived(again)
    await hub.close()


async def test_joins_are_refused_fast_while_storage_is_away(store: MemoryStore) -> None:
    hub = CircleHub(store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW)
    store.away = True
    from signaling.protocol import ProtocolError

    with pytest.raises(ProtocolError) as refused:
        await hub.arrive("host-token")
    assert refused.value.code == "storage_unavailable"
    assert hub.is_idle()


def resume_command(seat_id: str, seat_token: str) -> Command:
    from signaling.session import digest

    return lambda s: machine.join(
        s,
        seat_id=seat_id,
        display_name="Whoever",
        role=Role.PARTICIPANT,
        muted=True,
        now=NOW,
        resume_hash=digest(seat_token),
    )


async def test_during_an_outage_a_dropped_person_takes_their_seat_back_and_a_newcomer_cannot(
    store: MemoryStore,
) -> None:
    from signaling.protocol import ProtocolError
    from signaling.session import digest

    hub = CircleHub(store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW)
    async with hub.arrival("host-token") as arrival:
        live = arrival.live
        await live.join("ana", Inbox(), join_command("ana", Role.HOST))
    sam = Inbox()
    async with hub.arrival("join-token") as arrival:
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
                token_hash=digest("sam-secret"),
            ),
            seat_token="sam-secret",
        )
    await live.disconnect("sam", sam)
    store.away = True
    saved_before = len(store.saved)

    # Sam's page comes back with the seat token: the link is remembered by the live
    # circle, the seat is in memory, and Sam is back in, told at once.
    back = Inbox()
    arrival = await hub.arrive("join-token", digest("sam-secret"))
    held = await arrival.live.join(
        "new-id",
        back,
        resume_command("new-id", "sam-secret"),
        seat_token="unused",
        resume_token="sam-secret",
        resume_hash=digest("sam-secret"),
    )
    await hub.arrived(arrival)
    assert arrival.live is live and held == "sam"
    assert back.messages[0]["type"] == "joined"
    assert live.state.seats["sam"].disconnected_at is None

    # Someone without a seat here, or with a made-up token, needs the database.
    for token in ("", digest("made-up")):
        with pytest.raises(ProtocolError) as refused:
            await hub.arrive("join-token", token)
        assert refused.value.code == "storage_unavailable"
    # A link that never opened this circle here is not known from memory either.
    store.links["other-join"] = LinkMatch(CIRCLE, Role.PARTICIPANT)
    with pytest.raises(ProtocolError):
        await hub.arrive("other-join", digest("sam-secret"))

    # When the database is back, the return is stored with the rest.
    store.away = False
    async with asyncio.timeout(5):
        while live.storage_away or len(store.saved) == saved_before:
            await asyncio.sleep(0.02)
    assert store.saved[-1].seats["sam"].disconnected_at is None
    await hub.close()


async def test_an_outage_keeps_a_bounded_number_of_changes_and_tells_who_is_refused(
    store: MemoryStore,
) -> None:
    limit = 5
    state = CircleState(CIRCLE, settings=CircleSettings(allow_rename=True))
    live = LiveCircle(
        state, store, SharedMixAudioPath(run_clock=False), lambda: NOW, unstored_limit=limit
    )
    ana, sam = Inbox(), Inbox()
    await live.join("ana", ana, join_command("ana", Role.HOST))
    await live.join("sam", sam, join_command("sam", Role.PARTICIPANT))
    others = ["kim", "lee", "max", "ned", "oli", "pat", "quin"]
    for name in others:
        await live.join(name, Inbox(), join_command(name, Role.PARTICIPANT))
    store.away = True
    # Self-mute toggles change only the last state: however many, they keep one write.
    for i in range(300):
        live.submit(
            lambda s, muted=(i % 2 == 0): machine.set_own_mute(s, seat_id="sam", muted=muted),
            actor="sam",
        )
    await asyncio.sleep(0.05)
    assert live.storage_away and len(live._unstored) <= 2

    # Renames are audited: each is kept, up to the limit for a participant, then refused
    # with a code the page shows; the refused one changes nothing.
    renamed = 0
    with pytest.raises(RoomError) as refused:
        for i in range(20):
            live.submit(
                lambda s, i=i: machine.rename(s, seat_id="sam", display_name=f"Sam {i}"),
                actor="sam",
            )
            renamed += 1
    assert refused.value.code == "storage_unavailable"
    assert 0 < renamed < 20
    assert live.decided.seats["sam"].display_name == f"Sam {renamed - 1}"
    # The host can still mute and remove past it (safety first), up to twice the limit.
    removed = []
    with pytest.raises(RoomError) as host_refused:
        for name in others:
            live.submit(
                lambda s, name=name: machine.remove(s, actor_id="ana", target_id=name, now=NOW),
                actor="ana",
            )
            removed.append(name)
    assert host_refused.value.code == "storage_unavailable"
    assert removed and len(live._unstored) == 2 * limit
    # Nothing kept was lost: when the database is back, every change is stored, in order.
    store.away = False
    async with asyncio.timeout(5):
        while live.storage_away or live._unstored:
            await asyncio.sleep(0.02)
    actions = [e.action for e in store.audit]
    assert actions.count("rename") == renamed and actions.count("remove") == len(removed)
    assert store.saved[-1].seats["sam"].display_name == f"Sam {renamed - 1}"
    # And the circle takes changes again.
    live.submit(lambda s: machine.rename(s, seat_id="sam", display_name="Sam again"), actor="sam")


class FencedStore(MemoryStore):
    """A node's store once another node claimed the circle: every write is refused."""

    def __init__(self) -> None:
        super().__init__()
        self.fenced_out = False

    async def save_batch(self, writes: Sequence[StateWrite]) -> None:
        if self.fenced_out:
            raise LeaseLost("claimed by another node")
        await super().save_batch(writes)


async def test_a_circle_whose_lease_was_lost_stops_here_and_its_people_reconnect() -> None:
    store = FencedStore()
    hub = CircleHub(store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW)
    released: list[str] = []

    async def on_released(circle_id: str) -> None:
        released.append(circle_id)

    hub.on_released = on_released
    arrival = await hub.arrive("host-token")
    ana = Inbox()
    await arrival.live.join("ana", ana, join_command("ana", Role.HOST))
    await hub.arrived(arrival)
    saved = len(store.saved)
    store.fenced_out = True
    arrival.live.submit(lambda s: machine.set_own_mute(s, seat_id="ana", muted=True))
    for _ in range(50):
        if not hub.live_circles() and released:
            break
        await asyncio.sleep(0.01)
    assert hub.live_circles() == []
    assert ana.closed == 1012  # the page reconnects, and its door finds the new owner
    assert len(store.saved) == saved  # nothing more was written from here
    assert released == ["c1"]
    await hub.close()


async def test_a_drained_circle_is_stored_before_it_leaves(store: MemoryStore) -> None:
    hub = CircleHub(store, lambda: SharedMixAudioPath(run_clock=False), lambda: NOW)
    arrival = await hub.arrive("host-token")
    ana = Inbox()
    await arrival.live.join("ana", ana, join_command("ana", Role.HOST))
    await hub.arrived(arrival)
    store.delay = 0.05
    arrival.live.submit(lambda s: machine.set_own_mute(s, seat_id="ana", muted=True))
    assert await hub.evict("c1", 1012, flush=True)
    assert ana.closed == 1012
    assert store.saved[-1].seats["ana"].muted is True
    assert hub.is_idle()
