"""The fold of a post's events into facts: known answers, and independence of arrival order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.metrics.facts import EventRecord, fold
from services.metrics.service import attributes_of
from shared.contracts import events as ev
from tests.metrics import builders as b

# Department calendar as routing holds it: Mon-Fri 09:00-17:00 UTC; Monday 2026-11-30 is a state holiday.
FRI_1600 = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
FRI_1630 = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
TUE_1000 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TUE_1200 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DUE_FR = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # 8 business hours after Friday 16:00


def record(env) -> EventRecord:
    return EventRecord(env.id, env.type, env.time, attributes_of(env.data.model_dump(mode="json")))


def weekend_scenario(post_id: str = "p1") -> list:
    """Received Friday 16:00, accepted 16:30, first reply Tuesday 10:00, resolved Tuesday 12:00.

    Business time (routing's calendar): Fri 16:00-17:00 counts, Sat/Sun/holiday Monday do not, Tuesday from
    09:00 does: assign 1,800 s, first response 3,600 + 3,600 = 7,200 s, resolve 3,600 + 10,800 = 14,400 s.
    """
    r = FRI_1600
    return [
        b.received(post_id, r),
        b.screened(post_id, r + timedelta(seconds=2), priority=2, labels=("pii:phone",)),
        b.lifecycle(
            ev.AssignmentCreatedV1,
            post_id,
            r,
            r + timedelta(seconds=3),
            status="offered",
            first_response_due_at=DUE_FR,
            labels=["roads"],
        ),
        b.lifecycle(ev.AssignmentOfferedV1, post_id, r, r + timedelta(seconds=3), responder_id="r1"),
        b.lifecycle(
            ev.AssignmentAcceptedV1,
            post_id,
            r,
            FRI_1630,
            responder_id="r1",
            business_seconds_since_received=1800,
        ),
        b.lifecycle(
            ev.ReplyPublishedV1, post_id, r, TUE_1000, responder_id="r1", business_seconds_since_received=7200
        ),
        b.lifecycle(
            ev.AssignmentResolvedV1,
            post_id,
            r,
            TUE_1200,
            responder_id="r1",
            business_seconds_since_received=14400,
        ),
    ]


class TestWeekendAndHolidayScenario:
    def test_wall_clock_and_business_durations(self):
        f = fold("p1", [record(e) for e in weekend_scenario()])
        assert f.received_at == FRI_1600
        assert f.assign_seconds == 1800
        assert f.first_response_seconds == (TUE_1000 - FRI_1600).total_seconds() == 324_000
        assert f.resolve_seconds == 331_200
        assert (f.assign_business_seconds, f.first_response_business_seconds, f.resolve_business_seconds) == (
            1800,
            7200,
            14400,
        )

    def test_owner_status_sla_and_labels(self):
        f = fold("p1", [record(e) for e in weekend_scenario()])
        assert (f.department, f.queue, f.responder_id, f.status) == ("transport", "general", "r1", "resolved")
        assert f.priority == 2  # screening's priority, not a later escalated one
        assert f.platform == "x"
        assert f.sla_met is True
        assert f.at_risk is False
        assert f.labels == ["pii:phone", "roads"]
        assert f.hashtags == ["roadworks"]
        assert f.replies == 1


class TestOrderIndependence:
    @settings(max_examples=60, deadline=None)
    @given(st.permutations(range(7)))
    def test_any_arrival_order_gives_the_same_facts(self, order):
        events = [record(e) for e in weekend_scenario()]
        assert fold("p1", [events[i] for i in order]) == fold("p1", events)

    def test_lifecycle_without_the_received_event_uses_post_received_at(self):
        events = [record(e) for e in weekend_scenario()[2:]]
        f = fold("p1", events)
        assert f.received_at == FRI_1600
        assert f.first_response_seconds == 324_000


class TestLifecycle:
    r = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def at(self, minutes: float) -> datetime:
        return self.r + timedelta(minutes=minutes)

    def test_transfer_moves_the_owner_and_remembers_both_departments(self):
        events = [
            b.lifecycle(ev.AssignmentCreatedV1, "p", self.r, self.at(1)),
            b.lifecycle(
                ev.AssignmentTransferredV1, "p", self.r, self.at(5), department="health", queue="nurses"
            ),
        ]
        f = fold("p", [record(e) for e in events])
        assert (f.department, f.queue, f.status, f.transfers) == ("health", "nurses", "waiting", 1)
        assert f.waiting_since == self.at(5)
        assert f.departments == ["health", "transport"]

    def test_warning_then_breach_while_open_is_at_risk_and_not_met(self):
        due = self.at(60)
        events = [
            b.lifecycle(ev.AssignmentCreatedV1, "p", self.r, self.at(1), first_response_due_at=due),
            b.lifecycle(
                ev.SlaWarningV1,
                "p",
                self.r,
                self.at(45),
                target="first_response",
                due_at=due,
                sla_policy="std",
            ),
        ]
        f = fold("p", [record(e) for e in events])
        assert f.at_risk is True
        assert f.sla_met is None  # not known yet
        events.append(
            b.lifecycle(
                ev.SlaBreachedV1,
                "p",
                self.r,
                self.at(60),
                target="first_response",
                due_at=due,
                sla_policy="std",
            )
        )
        events.append(b.lifecycle(ev.ReplyPublishedV1, "p", self.r, self.at(70), responder_id="r"))
        f = fold("p", [record(e) for e in events])
        assert f.breached_first_response is True
        assert f.sla_met is False
        assert f.at_risk is False  # answered: no longer at risk

    def test_declines_releases_escalations_and_approvals_are_counted(self):
        events = [
            b.lifecycle(ev.AssignmentCreatedV1, "p", self.r, self.at(1), status="offered"),
            b.lifecycle(ev.AssignmentDeclinedV1, "p", self.r, self.at(2)),
            b.lifecycle(ev.AssignmentAcceptedV1, "p", self.r, self.at(3), responder_id="r"),
            b.lifecycle(ev.AssignmentReleasedV1, "p", self.r, self.at(4), responder_id=None),
            b.lifecycle(ev.AssignmentEscalatedV1, "p", self.r, self.at(5)),
            b.lifecycle(ev.AssignmentAcceptedV1, "p", self.r, self.at(6), responder_id="r2"),
            b.lifecycle(ev.ReplyApprovalRequestedV1, "p", self.r, self.at(7), responder_id="r2"),
            b.lifecycle(
                ev.ReplyApprovalDecidedV1, "p", self.r, self.at(8), responder_id="r2", decision="rejected"
            ),
            b.lifecycle(ev.AssignmentAwaitingPublicV1, "p", self.r, self.at(9), responder_id="r2"),
        ]
        f = fold("p", [record(e) for e in events])
        assert (f.declines, f.releases, f.escalations) == (1, 1, 1)
        assert (f.approvals_requested, f.approvals_rejected) == (1, 1)
        assert f.accepted_at == self.at(3)  # the first acceptance ends time to assign
        assert f.assign_seconds == 180
        assert f.status == "awaiting_public"

    def test_free_text_is_not_kept(self):
        env = b.received("p", self.r, text="Call me on 0412 345 678 #Flood #flood #BushFire")
        attributes = attributes_of(env.data.model_dump(mode="json"))
        assert "text" not in attributes
        assert "0412" not in str(attributes)
        assert attributes["hashtags"] == ["flood", "bushfire"]
