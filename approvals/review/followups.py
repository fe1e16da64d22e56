"""The follow-ups a proposal asks for, as a person sees them before deciding it: for an email its
template, recipient, subject and first lines; for a webhook its URL and JSON body.

An email is rendered from the record as the proposal would leave it, each value its workflow may
not read masked (m•••@example.com). Nothing here sends anything.
"""

import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from approvals.applying.followup_content import CannotRender, email_content, webhook_content
from approvals.models import FollowUpKind, Proposal
from approvals.workflows.selectors import workflow_policy_map


@dataclass(frozen=True)
class FollowUpPreview:
    kind: str
    template: str = ""
    recipient: str = ""
    recipient_of: str = ""  # whose address it is: "customer CUS-10432"
    subject: str = ""
    first_lines: str = ""
    url: str = ""
    body: str = ""
    problem: str = ""  # why it cannot be shown, and so why it would fail if sent now

    @property
    def label(self) -> str:
        return str(FollowUpKind(self.kind).label) if self.kind in FollowUpKind.values else self.kind


def _showable(text: str) -> str:
    """Text as it reads; what no page can show (a lone surrogate stored before intake refused it) as its escape."""
    return text.encode("utf-8", "backslashreplace").decode()


def _email(proposal: Proposal, params: dict[str, Any], policies: dict[tuple[str, str], str]) -> FollowUpPreview:
    template = str(params.get("template", ""))
    try:
        email = email_content(proposal=proposal, template=template, policies=policies)
    except CannotRender as problem:
        return FollowUpPreview(FollowUpKind.EMAIL_CUSTOMER, template=template, problem=str(problem))
    return FollowUpPreview(
        FollowUpKind.EMAIL_CUSTOMER,
        template=template,
        recipient=_showable(email.recipient),
        recipient_of=_showable(f"{email.customer.record_type} {email.customer.record_id}"),
        subject=_showable(email.subject),
        first_lines=_showable(email.first_lines()),
    )


def _webhook(proposal: Proposal, params: dict[str, Any]) -> FollowUpPreview:
    body = webhook_content(proposal=proposal, params=params, follow_up_id=None, change_id=None)
    text = json.dumps(body, cls=DjangoJSONEncoder, indent=2, sort_keys=True, ensure_ascii=False)
    return FollowUpPreview(FollowUpKind.WEBHOOK, url=_showable(str(params.get("url", ""))), body=_showable(text))


def followup_previews(*, proposal: Proposal) -> list[FollowUpPreview]:
    """Each follow-up of the proposal, in its order, as it would go out once the change is applied."""
    items = [item for item in proposal.follow_ups or [] if isinstance(item, dict)]
    emails = any(item.get("kind") == FollowUpKind.EMAIL_CUSTOMER for item in items)
    policies = workflow_policy_map(workflow=proposal.workflow) if emails else {}
    previews = []
    for item in items:
        kind, params = str(item.get("kind", "")), item.get("params")
        params = params if isinstance(params, dict) else {}
        if kind == FollowUpKind.EMAIL_CUSTOMER:
            previews.append(_email(proposal, params, policies))
        elif kind == FollowUpKind.WEBHOOK:
            previews.append(_webhook(proposal, params))
        else:
            previews.append(FollowUpPreview(kind, problem=f"'{kind[:40]}' is not a follow-up kind Countersign runs"))
    return previews
