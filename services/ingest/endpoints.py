"""HTTP in: canonical posts, batches, platform webhooks (with their verification handshakes), reads.

Thin: validate, canonicalise, hand to the group committer, map errors to problem+json. No SQL here.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse

from services.ingest import service, signatures
from services.ingest.config import IngestSettings
from services.ingest.group_commit import GroupCommitter
from services.ingest.normalise import DeliveryError, Rejected, Skipped, parse_delivery, parse_item
from services.ingest.repository import PostRepository
from services.ingest.schemas import (
    AuthorRead,
    BatchCreate,
    BatchResult,
    ItemResult,
    MediaRead,
    PostAccepted,
    PostCreate,
    PostRead,
)
from shared.auth import Principal, Role, authenticated, require_roles
from shared.contracts.events import Platform
from shared.deps import SessionDep
from shared.errors import FieldProblem, Forbidden, NotFound, Problem, ServiceError, problem_responses
from shared.logging import current_correlation_id, get_logger

log = get_logger(__name__)
# Every /v1/posts route needs a valid bearer token, checked before anything else runs.
router = APIRouter(
    prefix="/v1",
    tags=["posts"],
    responses=problem_responses(401, 403, 413, 422, 503),
    dependencies=[Depends(authenticated)],
)
# Webhooks: Meta and X cannot send our bearer token; they sign the body instead (checked before parsing).
# The unsigned platforms' relays still need a bearer token, checked in the route.
webhooks = APIRouter(prefix="/v1", tags=["webhooks"], responses=problem_responses(401, 403, 413, 422, 503))
#: OpenAPI extension naming the authentication of routes that do not take a bearer token from everyone.
ALTERNATIVE_AUTH = {
    "x-switchboard-auth": "x, facebook, instagram: the platform's HMAC signature of the body "
    "(x-twitter-webhooks-signature, X-Hub-Signature-256); other platforms: bearer token, agency_system.",
}

AgencySystem = Annotated[Principal, Depends(require_roles(Role.AGENCY_SYSTEM))]
# Ingest does not know which department a post is routed to, so only roles that see every department read
# stored posts here; department staff read their posts through routing's assignments (docs/security.md).
Reader = Annotated[Principal, Depends(require_roles(Role.AGENCY_SYSTEM, Role.OPS))]
#: Who may see the raw author (platform id, handle, display name); everyone else gets author_ref only.
RAW_AUTHOR_ROLES = frozenset({Role.AGENCY_SYSTEM, Role.ADMIN})


class Unprocessable(ServiceError):
    status_code = 422


def _settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state.settings
    return settings


def _committer(request: Request) -> GroupCommitter:
    committer: GroupCommitter = request.app.state.committer
    return committer


def _canonical(request: Request, data: PostCreate, now: datetime) -> service.CanonicalPost:
    return service.canonicalise(
        data=data,
        secret=_settings(request).author_ref_secret.get_secret_value().encode(),
        now=now,
        # The group writer runs outside this request's logging context: carry the correlation id along.
        correlation_id=current_correlation_id(),
    )


def _empty_text_problem(field: str) -> list[FieldProblem]:
    return [FieldProblem(field=field, reason="The text is empty once invisible characters are removed.")]


@router.post(
    "/posts",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PostAccepted,
    # {id, duplicate} as the issue specifies; duplicate_of appears only on a near-duplicate.
    response_model_exclude_none=True,
    summary="Accept one canonical post",
    description="Normalises the post, stores it with its posts.received.v1 event and answers 202 once that "
    "transaction has committed (shared with concurrent requests: group commit). Sending the same (platform, "
    "external_id) again answers with the same id and duplicate=true; the same author's same text within the "
    "near-duplicate window is stored with duplicate_of set.",
)
async def create_post(data: PostCreate, request: Request, _principal: AgencySystem) -> PostAccepted:
    try:
        post = _canonical(request, data, datetime.now(UTC))
    except service.EmptyAfterNormalisation as exc:
        raise Unprocessable(str(exc), errors=_empty_text_problem("body.text")) from exc
    (outcome,) = await _committer(request).submit([post])
    return PostAccepted(id=outcome.id, duplicate=outcome.duplicate, duplicate_of=outcome.duplicate_of)


async def _store_items(
    request: Request, items: list[PostCreate | Skipped | Rejected], *, field_prefix: str
) -> BatchResult:
    now = datetime.now(UTC)
    results: list[ItemResult | None] = [None] * len(items)
    posts: list[service.CanonicalPost] = []
    positions: list[int] = []
    for i, item in enumerate(items):
        if isinstance(item, Skipped):
            results[i] = ItemResult(
                index=i, status="skipped", external_id=item.external_id, reason=item.reason
            )
        elif isinstance(item, Rejected):
            problem = Problem(
                title="Unprocessable Content", status=422, detail="The item is not valid.", errors=item.errors
            )
            results[i] = ItemResult(index=i, status="rejected", external_id=item.external_id, problem=problem)
        else:
            try:
                posts.append(_canonical(request, item, now))
                positions.append(i)
            except service.EmptyAfterNormalisation as exc:
                problem = Problem(
                    title="Unprocessable Content",
                    status=422,
                    detail=str(exc),
                    errors=_empty_text_problem(f"{field_prefix}.{i}.text"),
                )
                results[i] = ItemResult(
                    index=i, status="rejected", external_id=item.external_id, problem=problem
                )
    outcomes = await _committer(request).submit(posts)
    for i, post, outcome in zip(positions, posts, outcomes, strict=True):
        results[i] = ItemResult(
            index=i,
            status="duplicate" if outcome.duplicate else "accepted",
            id=outcome.id,
            duplicate_of=outcome.duplicate_of,
            external_id=post.external_id,
        )
    final = [r for r in results if r is not None]
    return BatchResult(
        accepted=sum(r.status == "accepted" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        skipped=sum(r.status == "skipped" for r in final),
        items=final,
    )


@router.post(
    "/posts:batch",
    status_code=207,
    response_model=BatchResult,
    summary="Accept up to 500 canonical posts",
    description="Each item of `posts` is a canonical post (the body of POST /v1/posts) and is judged on its "
    "own: accepted, duplicate, or rejected with its own problem (field paths `body.posts.<i>.<field>`). "
    "One bad item never rejects the others. All accepted items are committed before the answer.",
)
async def create_posts_batch(body: BatchCreate, request: Request, _principal: AgencySystem) -> BatchResult:
    items: list[PostCreate | Skipped | Rejected] = []
    for i, raw in enumerate(body.posts):
        items.append(parse_item(raw, prefix=f"body.posts.{i}"))
    return await _store_items(request, items, field_prefix="body.posts")


def _platform(name: str) -> Platform:
    try:
        return Platform(name)
    except ValueError:
        raise NotFound(
            f"Unknown platform {name[:40]!r}; known: {', '.join(p.value for p in Platform)}."
        ) from None


async def _authorise_webhook(request: Request, platform: Platform, body: bytes, account: str | None) -> None:
    if platform.value in signatures.SIGNED_PLATFORMS:
        secrets = {
            acct: s.get_secret_value().encode()
            for acct, s in _settings(request).webhook_secrets.get(platform.value, {}).items()
        }
        ok = signatures.verify(
            platform=platform.value,
            body=body,
            header=request.headers.get(signatures.SIGNATURE_HEADERS[platform.value]),
            secrets=secrets,
            accounts=signatures.signing_accounts(platform.value, body, account),
        )
        if not ok:
            log.warning("webhook_signature_rejected", platform=platform.value)
            raise ServiceError("The webhook signature is missing or does not match.", status_code=401)
        return
    # Platforms that do not sign are relayed by the agency's own connectors, which hold a bearer token.
    principal = await authenticated(request)
    if not principal.has_any({Role.AGENCY_SYSTEM, Role.ADMIN}):
        raise Forbidden("Posting a webhook delivery needs the agency_system role.")


@webhooks.post(
    "/webhooks/{platform}",
    response_model=BatchResult,
    openapi_extra=ALTERNATIVE_AUTH,
    summary="Accept a platform's native webhook delivery",
    description="The raw payload of x, facebook, instagram, mastodon, bluesky, reddit, youtube, email "
    "(RFC 5322 message) or webform (see docs/ingest.md). x, facebook and instagram deliveries must carry "
    "the platform's signature (secrets per account in settings); the others need an agency_system bearer "
    "token. Each post in the delivery gets its own result; items that are not posts are `skipped`.",
    responses=problem_responses(404),
)
async def receive_webhook(
    platform: str,
    request: Request,
    account: Annotated[
        str | None,
        Query(max_length=200, description="The agency account, for payloads that do not name it."),
    ] = None,
) -> BatchResult:
    plat = _platform(platform)
    body = await request.body()
    await _authorise_webhook(request, plat, body, account)
    try:
        items = parse_delivery(plat, body, account=account)
    except DeliveryError as exc:
        raise Unprocessable(str(exc), errors=exc.errors) from exc
    if len(items) > 500:
        raise Unprocessable(
            "A delivery may carry at most 500 items.",
            errors=[FieldProblem(field="body", reason="too many items")],
        )
    result = await _store_items(request, items, field_prefix="body.items")
    log.info(
        "webhook_received",
        platform=plat.value,
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=result.rejected,
        skipped=result.skipped,
    )
    return result


@webhooks.get(
    "/webhooks/{platform}",
    openapi_extra={
        "x-switchboard-auth": "none: the platform's subscription check, answered only with the configured "
        "verify token (Meta) or as an HMAC of the challenge with the account's secret (X)."
    },
    summary="Subscription check: Meta hub.challenge or X CRC",
    description="facebook/instagram: answers `hub.challenge` when `hub.mode=subscribe` and "
    "`hub.verify_token` matches the configured token. x: answers `{response_token}` for `crc_token`, "
    "signed with the account's consumer secret (`account` query parameter, else the '*' secret).",
    responses={
        **problem_responses(403, 404, 422),
        200: {"content": {"text/plain": {}, "application/json": {}}},
    },
)
async def verify_webhook(platform: str, request: Request) -> Any:
    plat = _platform(platform)
    q = request.query_params
    account = q.get("account")
    settings = _settings(request)
    if plat is Platform.X:
        token = q.get("crc_token")
        if not token or len(token) > 1000:
            raise Unprocessable(
                "crc_token is required.",
                errors=[FieldProblem(field="query.crc_token", reason="Field required")],
            )
        secrets = {a: s.get_secret_value().encode() for a, s in settings.webhook_secrets.get("x", {}).items()}
        secret = signatures.secret_for(secrets, account or signatures.ANY_ACCOUNT)
        if secret is None:
            raise Forbidden("No X consumer secret is configured for this account.")
        return JSONResponse({"response_token": signatures.x_crc_response(secret, token)})
    if plat in (Platform.FACEBOOK, Platform.INSTAGRAM):
        mode, given, challenge = q.get("hub.mode"), q.get("hub.verify_token"), q.get("hub.challenge")
        if mode != "subscribe" or not challenge or len(challenge) > 1000:
            raise Unprocessable(
                "hub.mode=subscribe and hub.challenge are required.",
                errors=[FieldProblem(field="query.hub.challenge", reason="Field required")],
            )
        tokens = settings.meta_verify_tokens
        expected = tokens.get(account or "") or tokens.get(signatures.ANY_ACCOUNT)
        if expected is None or given is None or not _equal(expected.get_secret_value(), given):
            raise Forbidden("hub.verify_token does not match.")
        return PlainTextResponse(challenge)
    raise NotFound(f"{plat.value} has no subscription check.")


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@router.get(
    "/posts/{post_id}",
    response_model=PostRead,
    summary="Read one stored post",
    description="For agency_system, ops and admin (roles that see every department). Raw author details "
    "(`author`) only for agency_system and admin; null for ops, who get the `author_ref` pseudonym.",
    responses=problem_responses(404),
)
async def get_post(post_id: str, session: SessionDep, principal: Reader) -> PostRead:
    post = await PostRepository(session).get(post_id[:64])
    if post is None:
        raise NotFound(f"No post with id {post_id[:64]!r}.")
    author = (
        AuthorRead(id=post.author_id, handle=post.author_handle, display_name=post.author_display_name)
        if principal.has_any(RAW_AUTHOR_ROLES)
        else None
    )
    return PostRead(
        id=post.id,
        platform=Platform(post.platform),
        external_id=post.external_id,
        account=post.account,
        author_ref=post.author_ref,
        author=author,
        text=post.text,
        text_original=post.text_original,
        language=post.language,
        language_confidence=post.language_confidence,
        urls=post.urls,
        hashtags=post.hashtags,
        mentions=post.mentions,
        media=[MediaRead.model_validate(m) for m in post.media],
        visibility=post.visibility,
        conversation_id=post.conversation_id,
        in_reply_to=post.in_reply_to,
        url=post.url,
        duplicate_of=post.duplicate_of,
        created_at=post.created_at,
        received_at=post.received_at,
    )
