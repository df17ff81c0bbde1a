"""B1, the design a team would build first: one synchronous request does everything, no Kafka.

POST /v1/posts validates the same body as ingest, screens it with the same policy engine and default pack,
routes it with the same rule engine, and stores post, screening and assignment with one ORM commit per
request (SQLAlchemy's default pool). No outbox, no events, no metrics service: the platform's work minus
its decoupling and guarantees.

``python -m bench.monolith PORT DATABASE_URL`` serves it with uvicorn like the services are served.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, status
from sqlalchemy import Integer, String, Text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.ingest.schemas import PostAccepted, PostCreate
from services.policy import engine as policy_engine
from services.policy.service import default_pack
from services.routing import rules as routing_rules


class Base(DeclarativeBase):
    pass


class MonolithPost(Base):
    __tablename__ = "monolith_post"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    labels: Mapped[str] = mapped_column(Text)
    redacted_text: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(100))


PACK = default_pack()


def create_app(database_url: str) -> FastAPI:
    engine = create_async_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    ruleset = routing_rules.compile_ruleset(
        version="b1",
        rules=[],
        default={"department": "general"},
        crisis=routing_rules.Target("crisis", "crisis.crisis", 1, frozenset(), "crisis"),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(title="B1 naive synchronous monolith", lifespan=lifespan)

    @app.post("/v1/posts", status_code=status.HTTP_202_ACCEPTED, response_model=PostAccepted)
    async def create_post(post: PostCreate) -> PostAccepted:
        now = datetime.now(UTC)
        screening = policy_engine.screen(
            PACK,
            post.text,
            policy_engine.Context(direction="inbound", now=now, platform=post.platform.value),
        )
        facts = routing_rules.PostFacts(
            platform=post.platform.value,
            account=post.account,
            visibility=post.visibility,
            language=None,
            author_ref=post.author.id,
            labels=frozenset(screening.labels),
            hashtags=frozenset(),
            text=post.text.lower(),
            risk=screening.risk,
            priority=screening.priority,
        )
        match = ruleset.evaluate(facts)
        row = MonolithPost(
            id=str(uuid.uuid4()),
            platform=post.platform.value,
            external_id=post.external_id,
            text=post.text,
            labels=",".join(screening.labels),
            redacted_text=screening.redacted_text,
            priority=match.priority,
            department=match.target.department,
            queue=match.target.queue,
        )
        async with sessions() as session, session.begin():
            session.add(row)
        return PostAccepted(id=row.id, duplicate=False)

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(sys.argv[2]),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
    )
