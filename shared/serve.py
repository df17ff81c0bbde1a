"""``python -m services.<name>``: serve one service with uvicorn on its configured host and port."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from shared.config import BaseServiceSettings


def serve(create_app: Callable[[], FastAPI], settings: BaseServiceSettings) -> None:
    app = create_app()
    # A process of its own: settle the garbage collector once started (shared.runtime).
    app.state.settle_gc = True
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our JSON logging is configured in the lifespan
        access_log=False,
        timeout_graceful_shutdown=8,
    )
