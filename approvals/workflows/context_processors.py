from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from approvals.workflows.rights import hears_audit_alarms
from audit.models import AuditEvent
from audit.selectors import audit_chain_broken


def audit_alarm(request: HttpRequest) -> dict:
    """`audit_alarm` for base.html's banner: the `audit.broken` event, for a workflow owner or an
    auditor, or nothing. Read only when a page renders the banner: one indexed query while the chain
    is sound."""

    def alarm() -> list[AuditEvent]:
        if not request.user.is_authenticated:
            return []
        broken = audit_chain_broken()
        if broken is None or not hears_audit_alarms(user=request.user):
            return []
        return [broken]

    return {"audit_alarm": SimpleLazyObject(alarm)}
