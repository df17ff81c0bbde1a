"""HTTP out: the policy service's reply check, and the publisher that hands replies to platforms.

The policy client fails closed: any doubt (unreachable, timeout, 5xx after retries, a body that does not
follow the contract) is ``PolicyUnavailable`` and nothing is published.
Contract: POST /v1/checks {text, platform, visibility, media[], in_reply_to_post_id?, department?} ->
{check_id, decision: allow|review|block, findings[{rule_id, severity, message, span, suggestion, source}],
policy_version}.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.routing.models import Reply
from shared.errors import ServiceError
from shared.logging import get_logger

log = get_logger(__name__)


class PolicyUnavailable(ServiceError):
    status_code = 503
    title = "Policy check unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(
            f"{message} The reply was not published: replies go out only after a policy check.",
            headers={"Retry-After": "5"},
        )


class PolicyRejected(PolicyUnavailable):
    """Policy refused our request (a 4xx but 408/429): retrying will not help; still nothing is sent."""

    status_code = 502
    title = "Policy check refused"


class CheckFinding(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rule_id: str = Field(max_length=200)
    severity: str = Field(max_length=20)
    message: str = Field(max_length=2000)
    span: Any = None
    suggestion: str | None = Field(None, max_length=2000)
    source: str | None = Field(None, max_length=500)


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    check_id: str = Field(min_length=1, max_length=64)
    decision: Literal["allow", "review", "block"]
    findings: list[CheckFinding] = Field(default_factory=list, max_length=500)
    policy_version: str = Field(min_length=1, max_length=64)


class PolicyClient:
    def __init__(
        self,
        *,
        base_url: str,
        timeout: float,
        attempts: int,
        backoff_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)
        self.attempts = attempts
        self.backoff = backoff_seconds

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(
        self,
        *,
        text: str,
        platform: str,
        visibility: str,
        media: list[dict[str, Any]],
        in_reply_to_post_id: str | None,
        department: str | None,
        bearer: str | None,
        correlation_id: str | None = None,
    ) -> CheckResult:
        body = {
            "text": text,
            "platform": platform,
            "visibility": visibility,
            "media": media,
            "in_reply_to_post_id": in_reply_to_post_id,
            "department": department,
        }
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        if correlation_id:
            headers["X-Correlation-ID"] = correlation_id
        last = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._client.post("/v1/checks", json=body, headers=headers)
            except httpx.HTTPError as exc:
                last = f"the policy service could not be reached ({type(exc).__name__})."
            else:
                # Retry only what may pass next time; a 4xx is our request's fault and will not.
                if response.status_code < 300:
                    try:
                        return CheckResult.model_validate_json(response.content)
                    except ValidationError:
                        log.error("policy_contract_violation", status=response.status_code)
                        raise PolicyUnavailable("The policy service answered outside its contract.") from None
                if response.status_code not in (408, 429) and response.status_code < 500:
                    log.error("policy_check_rejected", status=response.status_code)
                    raise PolicyUnavailable(
                        f"The policy service refused the check (HTTP {response.status_code})."
                    )
                last = f"the policy service answered HTTP {response.status_code}."
            log.warning("policy_check_retry", attempt=attempt, reason=last)
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * attempt)
        raise PolicyUnavailable(f"After {self.attempts} attempts {last}")


class Publisher(Protocol):
    """Hands a checked reply to its platform. Real platform connectors implement this."""

    async def publish(self, reply: Reply, *, platform: str, post_id: str) -> None: ...


class LoggingPublisher:
    """Publishes by logging that it would: ids and sizes only, never the reply text."""

    async def publish(self, reply: Reply, *, platform: str, post_id: str) -> None:
        log.info(
            "reply_published",
            reply_id=reply.id,
            assignment_id=reply.assignment_id,
            post_id=post_id,
            platform=platform,
            text_chars=len(reply.text),
            media=len(reply.media),
        )
