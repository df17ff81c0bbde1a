"""The policy service through FastAPI, the real broker and the real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer

from services.policy.config import PolicySettings
from services.policy.main import create_app
from services.policy.service import default_pack
from shared.contracts import EVENT_TYPES, PostReceivedV1, Topic, decode_envelope, new_event
from shared.contracts.events import PostMedia
from shared.contracts.topics import dead_letter_topic
from shared.kafka.producer import make_producer

pytestmark = pytest.mark.kafka

DEFAULT = default_pack().policy_version


async def _publish(settings: PolicySettings, post: PostReceivedV1) -> None:
    producer = make_producer(settings.kafka, client_id="test")
    await producer.start()
    try:
        envelope = new_event(post, source="/test", time=post.received_at)
        await producer.send_and_wait(
            Topic.POSTS_RECEIVED,
            envelope.model_dump_json().encode(),
            key=post.post_id.encode(),
            headers=[("ce_type", envelope.type.encode())],
        )
    finally:
        await producer.stop()


def _post(text: str) -> PostReceivedV1:
    now = datetime.now(UTC)
    return PostReceivedV1(
        post_id=str(uuid.uuid4()),
        platform="x",
        external_id=uuid.uuid4().hex,
        account="@Agency",
        author_ref="a" * 32,
        text=text,
        created_at=now,
        received_at=now,
    )


async def _screening(client, post_id, headers, within=15.0):
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        response = await client.get(f"/v1/screenings/{post_id}", headers=headers)
        if response.status_code == 200:
            return response.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"post {post_id} was not screened")


PACK = """
name: test-pack
version: "1"
rules:
  - id: LEX-1
    description: test rule
    source: test
    applies_to: both
    label: spam
    severity: medium
    action: block
    message: Contains the word casino.
    detector: {type: lexicon, terms: [casino]}
"""


class TestInboundScreening:
    async def test_a_post_is_screened_stored_and_emitted_with_redacted_pii_and_crisis_labels(
        self, make_settings, running, token
    ):
        settings = make_settings(PolicySettings)
        async with running(create_app(settings)) as client:
            consumer = AIOKafkaConsumer(
                Topic.POSTS_SCREENED,
                bootstrap_servers=settings.kafka.bootstrap_servers,
                auto_offset_reset="earliest",
                group_id=f"test-{uuid.uuid4().hex}",
                session_timeout_ms=2000,
                heartbeat_interval_ms=400,
            )
            await consumer.start()
            try:
                post = _post("My TFN is 123 456 782 and I want to end my life")
                await _publish(settings, post)
                body = await _screening(client, post.post_id, token("ops"))
                assert body["labels"] == ["pii:tfn", "self_harm"]
                assert body["risk"] == "critical"
                assert body["priority"] == 1
                assert body["policy_version"] == DEFAULT
                assert "123 456 782" not in body["redacted_text"]
                assert "[TFN removed]" in body["redacted_text"]

                event = None
                deadline = asyncio.get_running_loop().time() + 15
                while event is None and asyncio.get_running_loop().time() < deadline:
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for record in records:
                            envelope = decode_envelope(record.value, EVENT_TYPES)
                            if envelope.data.post_id == post.post_id:
                                event = envelope.data
                assert event is not None
                assert event.crisis is True
                assert event.labels == ["pii:tfn", "self_harm"]
                assert {f.rule_id for f in event.findings} == {"PI-01", "SAFE-01"}
                assert "123 456 782" not in event.model_dump_json()
            finally:
                await consumer.stop()

    async def test_an_attached_document_photo_and_a_repeat_are_screened(self, make_settings, running, token):
        settings = make_settings(PolicySettings)
        async with running(create_app(settings)) as client:
            post = _post("Photo of my Medicare card, why is the number wrong?").model_copy(
                update={
                    "media": [PostMedia(type="image", url="https://example.com/a.jpg")],
                    "duplicate_of": str(uuid.uuid4()),
                }
            )
            await _publish(settings, post)
            body = await _screening(client, post.post_id, token("admin"))
            assert {"pii:image", "flooding"} <= set(body["labels"])
            assert {"PI-13", "MOD-05"} <= {f["rule_id"] for f in body["findings"]}

    async def test_unknown_post_is_404_problem_json(self, make_settings, running, token):
        async with running(create_app(make_settings(PolicySettings))) as client:
            response = await client.get("/v1/screenings/nope", headers=token("ops"))
            assert response.status_code == 404
            assert response.headers["content-type"].startswith("application/problem+json")


class TestOutboundChecks:
    async def test_a_reply_asking_for_a_tfn_in_public_is_blocked_with_a_suggestion_and_stored(
        self, make_settings, running, token
    ):
        async with running(create_app(make_settings(PolicySettings))) as client:
            response = await client.post(
                "/v1/checks",
                json={"text": "Please send us your TFN and we'll look into it.", "platform": "x"},
                headers=token("agency_system"),
            )
            assert response.status_code == 201, response.text
            body = response.json()
            assert body["decision"] == "block"
            assert body["policy_version"] == DEFAULT
            finding = next(f for f in body["findings"] if f["rule_id"] == "OUT-06")
            assert "private channel" in finding["suggestion"]
            assert finding["source"]
            stored = await client.get(f"/v1/checks/{body['check_id']}", headers=token("ops"))
            assert stored.status_code == 200
            assert stored.json()["decision"] == "block"
            assert stored.json()["findings"] == body["findings"]

    async def test_a_plain_factual_reply_is_allowed(self, make_settings, running, token):
        async with running(create_app(make_settings(PolicySettings))) as client:
            response = await client.post(
                "/v1/checks",
                json={
                    "text": "Thanks for asking. The M4 reopens at 5am. Details: https://www.transport.nsw.gov.au",
                    "platform": "x",
                },
                headers=token("responder"),
            )
            assert response.status_code == 201, response.text
            assert response.json()["decision"] == "allow"
            assert response.json()["findings"] == []

    async def test_a_reply_to_a_crisis_post_needs_two_support_services(self, make_settings, running, token):
        settings = make_settings(PolicySettings)
        async with running(create_app(settings)) as client:
            post = _post("i can't go on, i want to die")
            await _publish(settings, post)
            await _screening(client, post.post_id, token("ops"))
            draft = {"text": "We're sorry to hear that. Please reach out.", "platform": "x"}
            blocked = await client.post(
                "/v1/checks", json={**draft, "in_reply_to_post_id": post.post_id}, headers=token("responder")
            )
            assert blocked.json()["decision"] == "block"
            assert "OUT-13" in {f["rule_id"] for f in blocked.json()["findings"]}
            fixed = await client.post(
                "/v1/checks",
                json={
                    "text": "We're here. Lifeline 13 11 14 or Suicide Call Back Service 1300 659 467, "
                    "both 24/7. If life is in danger call 000.",
                    "platform": "x",
                    "in_reply_to_post_id": post.post_id,
                },
                headers=token("responder"),
            )
            assert fixed.json()["decision"] == "allow", fixed.json()

    async def test_a_responder_replying_for_another_department_is_blocked(
        self, make_settings, running, token
    ):
        draft = {"text": "The M4 reopens at 6pm tonight.", "platform": "x", "department": "transport"}
        async with running(create_app(make_settings(PolicySettings))) as client:
            other = await client.post(
                "/v1/checks", json=draft, headers=token("responder", departments=("tax",))
            )
            assert other.status_code == 201, other.text
            assert other.json()["decision"] == "block"
            assert [f["rule_id"] for f in other.json()["findings"]] == ["OUT-01"]
            own = await client.post(
                "/v1/checks", json=draft, headers=token("responder", departments=("transport",))
            )
            assert own.json()["decision"] == "allow"
            system = await client.post("/v1/checks", json=draft, headers=token("agency_system"))
            assert system.json()["decision"] == "allow"

    async def test_bad_input_is_422_naming_the_field(self, make_settings, running, token):
        async with running(create_app(make_settings(PolicySettings))) as client:
            response = await client.post(
                "/v1/checks", json={"text": "", "platform": "myspace"}, headers=token("responder")
            )
            assert response.status_code == 422
            fields = {e["field"] for e in response.json()["errors"]}
            assert {"body.text", "body.platform"} <= fields

    async def test_ops_cannot_create_checks(self, make_settings, running, token):
        async with running(create_app(make_settings(PolicySettings))) as client:
            response = await client.post(
                "/v1/checks", json={"text": "hi", "platform": "x"}, headers=token("ops")
            )
            assert response.status_code == 403


class TestPolicyAdmin:
    async def test_upload_activate_and_the_new_pack_decides(self, make_settings, running, token):
        async with running(create_app(make_settings(PolicySettings))) as client:
            admin = token("admin", subject="alice")
            listed = await client.get("/v1/policies", headers=token("supervisor"))
            assert [p["policy_version"] for p in listed.json() if p["active"]] == [DEFAULT]

            uploaded = await client.post(
                "/v1/policies", content=PACK, headers={**admin, "content-type": "application/yaml"}
            )
            assert uploaded.status_code == 201, uploaded.text
            assert uploaded.json()["policy_version"] == "test-pack@1"
            again = await client.post(
                "/v1/policies", content=PACK, headers={**admin, "content-type": "application/yaml"}
            )
            assert again.status_code == 409

            dry = await client.post(
                "/v1/policies/test-pack@1/evaluate",
                json={"items": [{"text": "Visit my casino", "direction": "outbound", "platform": "x"}]},
                headers=token("supervisor"),
            )
            assert dry.status_code == 200
            assert dry.json()["results"][0]["decision"] == "block"

            activated = await client.post(
                "/v1/policies/test-pack@1/activate", json={"reason": "trial"}, headers=admin
            )
            assert activated.status_code == 200
            assert activated.json()["activated_by"] == "alice"
            check = await client.post(
                "/v1/checks", json={"text": "Casinos are fun", "platform": "x"}, headers=token("responder")
            )
            assert check.json()["policy_version"] == "test-pack@1"
            assert check.json()["decision"] == "block"

    async def test_an_invalid_pack_is_422_naming_rule_and_field_and_the_active_pack_stays(
        self, make_settings, running, token
    ):
        async with running(create_app(make_settings(PolicySettings))) as client:
            admin = token("admin")
            bad = PACK.replace('version: "1"', 'version: "2"').replace("terms: [casino]", "terms: []")
            bad = bad.replace("severity: medium", "severity: huge")
            response = await client.post(
                "/v1/policies", content=bad, headers={**admin, "content-type": "application/yaml"}
            )
            assert response.status_code == 422
            assert response.headers["content-type"].startswith("application/problem+json")
            fields = {e["field"] for e in response.json()["errors"]}
            assert "rules[LEX-1].severity" in fields
            assert "rules[LEX-1].detector.terms" in fields
            bad_regex = PACK.replace(
                "{type: lexicon, terms: [casino]}", "{type: regex, patterns: ['(unclosed']}"
            )
            response = await client.post(
                "/v1/policies", content=bad_regex, headers={**admin, "content-type": "application/yaml"}
            )
            assert response.status_code == 422
            assert response.json()["errors"][0]["field"] == "rules[LEX-1].detector.patterns"
            listed = await client.get("/v1/policies", headers=admin)
            assert [p["policy_version"] for p in listed.json()] == [DEFAULT]
            assert listed.json()[0]["active"] is True

    async def test_only_admins_upload(self, make_settings, running, token):
        async with running(create_app(make_settings(PolicySettings))) as client:
            response = await client.post(
                "/v1/policies",
                content=PACK,
                headers={**token("supervisor"), "content-type": "application/yaml"},
            )
            assert response.status_code == 403

    async def test_json_packs_are_accepted_and_other_content_types_are_415(
        self, make_settings, running, token
    ):
        async with running(create_app(make_settings(PolicySettings))) as client:
            import yaml

            doc = yaml.safe_load(PACK)
            ok = await client.post(
                "/v1/policies",
                content=json.dumps(doc),
                headers={**token("admin"), "content-type": "application/json"},
            )
            assert ok.status_code == 201
            nope = await client.post(
                "/v1/policies", content=PACK, headers={**token("admin"), "content-type": "image/png"}
            )
            assert nope.status_code == 415


class TestModes:
    async def test_caretaker_mode_makes_replies_need_review_and_is_audited(
        self, make_settings, running, token
    ):
        async with running(create_app(make_settings(PolicySettings))) as client:
            draft = {"text": "The office is open 9am to 5pm on weekdays.", "platform": "facebook"}
            before = await client.post("/v1/checks", json=draft, headers=token("responder"))
            assert before.json()["decision"] == "allow"

            now = datetime.now(UTC)
            on = await client.post(
                "/v1/modes",
                json={
                    "mode": "caretaker",
                    "jurisdiction": "CTH",
                    "active": True,
                    "starts_at": (now - timedelta(hours=1)).isoformat(),
                    "ends_at": (now + timedelta(days=30)).isoformat(),
                    "reason": "House dissolved; election called",
                },
                headers=token("admin", subject="comms-lead"),
            )
            assert on.status_code == 201, on.text
            during = await client.post("/v1/checks", json=draft, headers=token("responder"))
            assert during.json()["decision"] == "review"
            assert during.json()["active_modes"] == ["caretaker"]
            promo = await client.post(
                "/v1/checks",
                json={
                    "text": "We are proud to announce a new initiative for families.",
                    "platform": "facebook",
                },
                headers=token("responder"),
            )
            assert promo.json()["decision"] == "block"

            off = await client.post(
                "/v1/modes",
                json={
                    "mode": "caretaker",
                    "jurisdiction": "CTH",
                    "active": False,
                    "reason": "New government sworn in",
                },
                headers=token("admin", subject="comms-lead"),
            )
            assert off.status_code == 201
            after = await client.post("/v1/checks", json=draft, headers=token("responder"))
            assert after.json()["decision"] == "allow"
            history = await client.get("/v1/modes/history", headers=token("ops"))
            assert [(h["active"], h["changed_by"], h["reason"]) for h in history.json()] == [
                (False, "comms-lead", "New government sworn in"),
                (True, "comms-lead", "House dissolved; election called"),
            ]

    async def test_a_caretaker_window_in_the_future_is_not_active_yet(self, make_settings, running, token):
        async with running(create_app(make_settings(PolicySettings))) as client:
            now = datetime.now(UTC)
            await client.post(
                "/v1/modes",
                json={
                    "mode": "caretaker",
                    "active": True,
                    "starts_at": (now + timedelta(days=1)).isoformat(),
                    "reason": "scheduled",
                },
                headers=token("admin"),
            )
            response = await client.post(
                "/v1/checks", json={"text": "Open today.", "platform": "x"}, headers=token("responder")
            )
            assert response.json()["decision"] == "allow"

    async def test_a_naive_datetime_is_rejected(self, make_settings, running, token):
        async with running(create_app(make_settings(PolicySettings))) as client:
            response = await client.post(
                "/v1/modes",
                json={"mode": "crisis", "active": True, "starts_at": "2026-01-01T00:00:00", "reason": "x"},
                headers=token("admin"),
            )
            assert response.status_code == 422
            assert response.json()["errors"][0]["field"] == "body.starts_at"


class TestActivationAcrossProcesses:
    async def test_another_instance_on_the_same_database_uses_the_new_pack_within_seconds(
        self, make_settings, running, token
    ):
        settings = make_settings(PolicySettings)
        async with running(create_app(settings)) as a, running(create_app(settings)) as b:
            draft = {"text": "Casinos are fun", "platform": "x"}
            before = await b.post("/v1/checks", json=draft, headers=token("responder"))
            assert before.json()["policy_version"] == DEFAULT  # b has now cached the active version
            admin = {**token("admin"), "content-type": "application/yaml"}
            assert (await a.post("/v1/policies", content=PACK, headers=admin)).status_code == 201
            activated = await a.post(
                "/v1/policies/test-pack@1/activate", json={"reason": "x"}, headers=token("admin")
            )
            assert activated.status_code == 200
            deadline = asyncio.get_running_loop().time() + 10
            seen = None
            while asyncio.get_running_loop().time() < deadline:
                seen = (await b.post("/v1/checks", json=draft, headers=token("responder"))).json()
                if seen["policy_version"] == "test-pack@1":
                    break
                await asyncio.sleep(0.1)
            assert seen is not None
            assert seen["policy_version"] == "test-pack@1"
            assert seen["decision"] == "block"


class TestAScreeningBugIsIsolated:
    async def test_a_post_whose_screening_raises_is_dead_lettered_and_the_others_are_screened(
        self, make_settings, running, token, monkeypatch
    ):
        """Partial batch failure with policy's real per-item work: the engine raising for one post (a bug,
        not the consumer's fail-point) costs that post only; its batch-mates are screened and stored."""
        from services.policy import engine

        marker = f"engine-bug-{uuid.uuid4().hex}"
        real_screen = engine.screen
        screened_texts: list[str] = []

        def screen(pack: engine.CompiledPack, text: str, ctx: engine.Context) -> engine.Screening:
            screened_texts.append(text)
            if marker in text:
                raise ValueError("a rule crashed on this post")
            return real_screen(pack, text, ctx)

        monkeypatch.setattr(engine, "screen", screen)
        settings = make_settings(PolicySettings)
        dlq = dead_letter_topic(Topic.POSTS_RECEIVED, "policy.screening")
        async with running(create_app(settings)) as client:
            consumer = AIOKafkaConsumer(
                dlq,
                bootstrap_servers=settings.kafka.bootstrap_servers,
                auto_offset_reset="earliest",
                group_id=f"test-{uuid.uuid4().hex}",
                session_timeout_ms=2000,
                heartbeat_interval_ms=400,
            )
            await consumer.start()
            try:
                before, bad, after = (
                    _post(f"Is the M4 open? {marker[-8:]}1"),
                    _post(f"hello {marker}"),
                    _post(f"Thanks {marker[-8:]}2"),
                )
                producer = make_producer(settings.kafka, client_id="test")
                await producer.start()
                try:
                    for post in (before, bad, after):  # one send burst: usually one consumer batch
                        envelope = new_event(post, source="/test", time=post.received_at)
                        await producer.send(
                            Topic.POSTS_RECEIVED,
                            envelope.model_dump_json().encode(),
                            key=post.post_id.encode(),
                            headers=[("ce_type", envelope.type.encode())],
                        )
                    await producer.flush()
                finally:
                    await producer.stop()
                for post in (before, after):
                    assert (await _screening(client, post.post_id, token("ops")))["post_id"] == post.post_id

                dead: dict[str, str] | None = None
                deadline = asyncio.get_running_loop().time() + 15
                while dead is None and asyncio.get_running_loop().time() < deadline:
                    for records in (await consumer.getmany(timeout_ms=200)).values():
                        for record in records:
                            if record.key == bad.post_id.encode():
                                dead = {k: v.decode() for k, v in record.headers}
                assert dead is not None, "the failing post was not dead-lettered"
                assert dead["dlq_error"].startswith("ValueError: a rule crashed")
                assert dead["dlq_attempts"] == "3"
                response = await client.get(f"/v1/screenings/{bad.post_id}", headers=token("ops"))
                assert response.status_code == 404
                # Each healthy post was screened once: the failure did not redo its batch.
                assert screened_texts.count(before.text) == 1
                assert screened_texts.count(after.text) == 1
            finally:
                await consumer.stop()
