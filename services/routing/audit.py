"""The routing service's audit trail (shared.audit): what it records and the one chain it records it in."""

from __future__ import annotations

from services.routing.models import AuditEntry, AuditHead
from shared.audit import AuditTrail

trail = AuditTrail(AuditEntry, AuditHead)
