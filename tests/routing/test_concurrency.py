"""Several routing consumers on one database: never over capacity, never two assignments for one post,
every post assigned or waiting. On PostgreSQL this exercises SELECT ... FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

import pytest

from services.routing.config import RoutingSettings
from services.routing.main import create_app
from tests.routing.conftest import Bus, add_responder, eventually, screened, setup_department

pytestmark = pytest.mark.kafka


class TestConcurrentConsumers:
    async def test_three_consumers_never_exceed_capacity_or_double_assign(
        self, make_settings, running, bus: Bus, token
    ) -> None:
        admin = token("admin")
        settings = make_settings(RoutingSettings, default_department="transport", timer_interval_ms=100)
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(running(create_app(settings))) for _ in range(3)]
            client = clients[0]
            await setup_department(client, admin)
            for i in range(8):
                await add_responder(client, admin, f"r{i}", capacity=2)
            posts = [screened(priority=1 + i % 4) for i in range(60)]
            for p in posts:
                await bus.send(p)

            async def all_routed() -> list[dict[str, Any]] | None:
                rows = []
                for p in posts:
                    r = await client.get("/v1/assignments", params={"post_id": p.post_id}, headers=admin)
                    rows.extend(r.json())
                return rows if len(rows) == len(posts) else None

            rows = await eventually(all_routed, within=60, what="every post routed")
            # Responders free capacity concurrently on different app instances while posts keep arriving.
            offered = [r for r in rows if r["status"] == "offered"]
            for i, row in enumerate(offered[:8]):
                c = clients[i % 3]
                headers = token("responder", departments=("transport",), subject=row["responder_id"])
                assert (
                    await c.post(f"/v1/assignments/{row['id']}/decline", headers=headers)
                ).status_code == 200

            final = await all_routed()
            assert final is not None
            assert len({r["post_id"] for r in final}) == len(posts)  # one assignment per post
            holding = Counter(r["responder_id"] for r in final if r["status"] == "offered")
            assert all(n <= 2 for n in holding.values()), holding
            statuses = Counter(r["status"] for r in final)
            assert statuses["offered"] == 16  # 8 responders x capacity 2: every unit of capacity in use
            assert statuses["offered"] + statuses["waiting"] == len(posts)
            loads = (
                await client.get("/v1/responders", params={"department": "transport"}, headers=admin)
            ).json()
            assert all(r["load"] <= r["capacity"] for r in loads)
