"""The ceiling for bench/ingest.py: the same FastAPI + pydantic validation of the same bodies, storing
nothing. Whatever ingest loses against this is the cost of normalising, de-duplicating and committing."""

from __future__ import annotations

from fastapi import FastAPI, status

from services.ingest.normalise import Rejected, parse_item
from services.ingest.schemas import BatchCreate, PostAccepted, PostCreate

app = FastAPI(title="validate-only ceiling")


@app.post("/v1/posts", status_code=status.HTTP_202_ACCEPTED, response_model=PostAccepted)
async def create_post(data: PostCreate) -> PostAccepted:
    return PostAccepted(id=data.external_id, duplicate=False)


@app.post("/v1/posts:batch", status_code=207)
async def create_batch(body: BatchCreate) -> dict[str, int]:
    items = [parse_item(raw) for raw in body.posts]
    return {"accepted": sum(not isinstance(i, Rejected) for i in items)}
