"""B2, the HTTP ceiling: the same request model as ingest's POST /v1/posts, validated, and nothing else.

``python -m bench.ceiling PORT`` serves it with uvicorn like the services are served.
"""

from __future__ import annotations

import sys
import uuid

import uvicorn
from fastapi import FastAPI, status

from services.ingest.schemas import PostAccepted, PostCreate

app = FastAPI(title="validate-only ceiling")


@app.post("/v1/posts", status_code=status.HTTP_202_ACCEPTED, response_model=PostAccepted)
async def create_post(post: PostCreate) -> PostAccepted:
    del post  # validated, not stored: this is the ceiling
    return PostAccepted(id=str(uuid.uuid4()), duplicate=False)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
