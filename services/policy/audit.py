"""The policy service's audit trail (shared.audit): every outbound check decision, pack upload and
activation, and caretaker/crisis mode switch, appended in the transaction that stores it.

Details carry ids, versions, outcomes and the administrator's stated reason; never the draft, its redacted
form or any matched value (the check's rule ids say what was found).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.policy.models import (
    AuditEntry,
    AuditHead,
    Check,
    ModeChange,
    PolicyActivation,
    PolicyPackVersion,
)
from shared.audit import AuditTrail

trail = AuditTrail(AuditEntry, AuditHead)


def check_decided(session: AsyncSession, check: Check) -> None:
    trail.record(
        session,
        actor=check.checked_by,
        action="policy.check",
        object_type="check",
        object_id=check.id,
        at=check.checked_at,
        details={
            "decision": check.decision,
            "policy_version": check.policy_version,
            "rule_ids": sorted({str(f.get("rule_id")) for f in check.findings})[:50],
            "failed_rules": check.failed_rules[:50],
            "active_modes": check.active_modes,
            "platform": check.platform,
            "visibility": check.visibility,
            "department": check.department,
            "in_reply_to_post_id": check.in_reply_to_post_id,
            "text_sha256": check.text_sha256,
        },
    )


def pack_uploaded(session: AsyncSession, row: PolicyPackVersion) -> None:
    trail.record(
        session,
        actor=row.created_by,
        action="policy.pack_uploaded",
        object_type="policy_pack",
        object_id=row.policy_version,
        at=row.created_at,
        details={
            "pack_name": row.name,
            "pack_version": row.version,
            "sha256": row.sha256,
            "rule_count": row.rule_count,
        },
    )


def pack_activated(session: AsyncSession, row: PolicyActivation) -> None:
    trail.record(
        session,
        actor=row.activated_by,
        action="policy.pack_activated",
        object_type="policy_pack",
        object_id=row.policy_version,
        at=row.activated_at,
        details={"reason": row.reason},
    )


def mode_changed(session: AsyncSession, row: ModeChange) -> None:
    trail.record(
        session,
        actor=row.changed_by,
        action="policy.mode_changed",
        object_type="mode",
        object_id=f"{row.mode}:{row.jurisdiction}",
        at=row.changed_at,
        details={
            "mode": row.mode,
            "jurisdiction": row.jurisdiction,
            "active": row.active,
            "starts_at": row.starts_at,
            "ends_at": row.ends_at,
            "reason": row.reason,
        },
    )
