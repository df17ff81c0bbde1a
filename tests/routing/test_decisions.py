"""Responder choice and queue draining: the fairness rules and the invariants, with hypothesis."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.decisions import Candidate, Need, Waiting, choose, plan_drain, queue_order

T0 = datetime(2025, 6, 2, tzinfo=UTC)


def cand(
    rid: str,
    *,
    load: int = 0,
    cap: int = 3,
    status: str = "available",
    idle: int | None = None,
    skills: tuple[str, ...] = (),
    langs: tuple[str, ...] = (),
    dept: str = "d",
) -> Candidate:
    return Candidate(
        rid,
        status,
        frozenset({dept}),
        frozenset(skills),
        frozenset(langs),
        cap,
        load,
        None if idle is None else T0 + timedelta(minutes=idle),
    )


class TestChoose:
    def test_least_loaded_then_longest_idle(self) -> None:
        c = choose(
            need=Need("d"),
            candidates=[cand("a", load=2), cand("b", load=1, idle=5), cand("c", load=1, idle=1)],
        )
        assert (c.responder_id, c.reason) == ("c", "least_loaded_longest_idle")

    def test_every_excluded_candidate_has_its_reason(self) -> None:
        c = choose(
            need=Need("d", frozenset({"roads"}), "vi", excluded=frozenset({"e"})),
            candidates=[
                cand("away", status="away"),
                cand("off", status="offline"),
                cand("full", load=3),
                cand("noskill"),
                cand("nolang", skills=("roads",), langs=("en",)),
                cand("e", skills=("roads",)),
                cand("other", dept="x"),
            ],
        )
        assert c.responder_id is None
        assert dict(c.excluded) == {
            "away": "away",
            "off": "offline",
            "full": "at_capacity",
            "noskill": "missing_skill:roads",
            "nolang": "language:vi",
            "e": "declined_or_expired",
        }
        assert c.considered == 6

    def test_continuity_beats_load_but_not_eligibility(self) -> None:
        need = Need("d", preferred=frozenset({"b"}))
        assert choose(need=need, candidates=[cand("a"), cand("b", load=2)]).responder_id == "b"
        offline = choose(need=need, candidates=[cand("a"), cand("b", status="offline")])
        assert (offline.responder_id, offline.reason) == ("a", "least_loaded_longest_idle")


class TestQueue:
    def test_priority_then_age(self) -> None:
        w = [
            Waiting("new-urgent", 1, T0 + timedelta(hours=1), Need("d")),
            Waiting("old", 3, T0, Need("d")),
            Waiting("older", 3, T0 - timedelta(hours=1), Need("d")),
        ]
        assert [x.assignment_id for x in queue_order(w)] == ["new-urgent", "older", "old"]

    def test_drain_spreads_load(self) -> None:
        w = [Waiting(f"p{i}", 3, T0 + timedelta(seconds=i), Need("d")) for i in range(4)]
        plan = plan_drain(waiting=w, candidates=[cand("a"), cand("b")], now=T0)
        assert Counter(ch.responder_id for _, ch in plan) == {"a": 2, "b": 2}


responders = st.lists(
    st.builds(
        cand,
        st.text("abcdefgh", min_size=1, max_size=3),
        load=st.integers(0, 3),
        cap=st.integers(0, 4),
        status=st.sampled_from(["available", "available", "away", "offline"]),
        idle=st.none() | st.integers(0, 100),
        skills=st.lists(st.sampled_from(["roads", "rail", "vi"]), max_size=2).map(tuple),
        dept=st.sampled_from(["d", "e"]),
    ),
    max_size=12,
    unique_by=lambda c: c.id,
)
waiting = st.lists(
    st.builds(
        Waiting,
        st.uuids().map(str),
        st.integers(1, 4),
        st.integers(0, 1000).map(lambda s: T0 + timedelta(seconds=s)),
        st.builds(
            Need,
            st.sampled_from(["d", "e"]),
            st.sets(st.sampled_from(["roads", "rail"]), max_size=1).map(frozenset),
        ),
    ),
    max_size=30,
    unique_by=lambda w: w.assignment_id,
)


class TestInvariants:
    @settings(max_examples=300, deadline=None)
    @given(cands=responders, items=waiting)
    def test_never_over_capacity_never_double_assigned_every_post_assigned_or_waiting(
        self, cands: list[Candidate], items: list[Waiting]
    ) -> None:
        plan = plan_drain(waiting=items, candidates=cands, now=T0)
        by_id = {c.id: c for c in cands}
        offered = Counter(ch.responder_id for _, ch in plan)
        for rid, n in offered.items():
            assert rid is not None
            c = by_id[rid]
            assert c.load + n <= max(c.capacity, c.load), "over capacity"
            assert c.status == "available"
        posts = [w.assignment_id for w, _ in plan]
        assert len(posts) == len(set(posts)), "a post offered twice"
        placed = set(posts)
        still_waiting = [w for w in items if w.assignment_id not in placed]
        assert len(placed) + len(still_waiting) == len(items)
        # Nobody left waiting could have been served by someone with spare capacity at the end.
        final = Counter(offered)
        for w in still_waiting:
            for c in cands:
                spare = c.load + final[c.id] < c.capacity
                fits = w.need.department in c.departments and w.need.required_skills <= c.skills
                assert not (spare and fits and c.status == "available"), "queue stuck while capacity is free"
        for w, ch in plan:
            c = by_id[ch.responder_id or ""]
            assert w.need.department in c.departments
            assert w.need.required_skills <= c.skills
