"""Where a circle goes, and whether a lease still holds: pure decisions, time passed in."""

from __future__ import annotations

from rooms.placement import (
    OVERLOADED_LAG_MS,
    Lease,
    NodeLoad,
    choose_node,
    is_alive,
    lease_valid,
)

TTL = 3.0


def node(
    node_id: str,
    participants: int = 0,
    *,
    lag: float = 0.0,
    seen: float = 100.0,
    draining: bool = False,
    cpu: float = 0.0,
) -> NodeLoad:
    return NodeLoad(
        node_id=node_id,
        url=f"http://{node_id}",
        media_address="127.0.0.1",
        participants=participants,
        circles=0,
        cpu=cpu,
        lag_ms=lag,
        seen_at=seen,
        draining=draining,
    )


def test_a_new_circle_goes_to_the_node_with_fewest_people() -> None:
    nodes = [node("a", 40), node("b", 12), node("c", 30)]
    chosen = choose_node(nodes, now=101.0, ttl=TTL)
    assert chosen is not None and chosen.node_id == "b"


def test_a_node_that_stopped_beating_or_drains_gets_no_circle() -> None:
    nodes = [node("a", 40), node("b", 0, seen=90.0), node("c", 1, draining=True)]
    chosen = choose_node(nodes, now=101.0, ttl=TTL)
    assert chosen is not None and chosen.node_id == "a"
    assert not is_alive(nodes[1], now=101.0, ttl=TTL)
    assert choose_node([nodes[1], nodes[2]], now=101.0, ttl=TTL) is None


def test_a_lagging_node_counts_as_fuller_and_an_overloaded_one_is_a_last_resort() -> None:
    # Same head count: the one whose loop lags is fuller (its voices already suffer).
    chosen = choose_node([node("a", 10, lag=60.0), node("b", 10)], now=100.0, ttl=TTL)
    assert chosen is not None and chosen.node_id == "b"
    overloaded = node("a", 0, lag=OVERLOADED_LAG_MS + 1)
    chosen = choose_node([overloaded, node("b", 100)], now=100.0, ttl=TTL)
    assert chosen is not None and chosen.node_id == "b"
    chosen = choose_node([overloaded], now=100.0, ttl=TTL)
    assert chosen is not None and chosen.node_id == "a"


def test_every_node_makes_the_same_choice_between_equals() -> None:
    nodes = [node("c"), node("a"), node("b")]
    assert {choose_node(nodes[i:] + nodes[:i], 100.0, TTL).node_id for i in range(3)} == {"a"}  # type: ignore[union-attr]


def test_a_lease_holds_for_its_owner_until_a_margin_before_it_expires() -> None:
    lease = Lease(circle_id="x", owner="a", fence=7, expires_at=105.0)
    assert lease_valid(lease, "a", now=103.0, margin=1.0)
    assert not lease_valid(lease, "a", now=104.5, margin=1.0)
    assert not lease_valid(lease, "b", now=100.0, margin=1.0)
    assert not lease_valid(None, "a", now=100.0, margin=1.0)
