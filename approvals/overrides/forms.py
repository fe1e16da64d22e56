"""What the override form names: the block, the scope and its target, the reason and the duration."""

from dataclasses import dataclass
from typing import Any

from django.http import QueryDict
from django.utils import timezone

from approvals import reasons
from approvals.models import Batch, OverrideBlock, OverrideScope, Proposal, Workflow
from approvals.overrides.selectors import override_target
from approvals.overrides.services import DEFAULT_OVERRIDE_MINUTES
from approvals.workflows.rights import Viewer
from approvals.workflows.schedule import override_duty
from core.errors import ValidationFailed


@dataclass(frozen=True)
class OverrideAsk:
    block: str
    scope: str
    target: str
    workflow: Workflow
    batch: Batch | None
    proposal: Proposal | None
    reason: str
    minutes_text: str

    @classmethod
    def read(cls, params: QueryDict, *, user: Viewer) -> "OverrideAsk":
        """The override `params` ask for, on a target `user` may see; NotFound naming it otherwise."""
        block, scope, target = params.get("block", ""), params.get("scope", ""), params.get("target", "")
        workflow, batch, proposal = override_target(user=user, block=block, scope=scope, target_id=target)
        default_minutes = str(min(DEFAULT_OVERRIDE_MINUTES, workflow.override_max_minutes))
        return cls(
            block,
            scope,
            target,
            workflow,
            batch,
            proposal,
            params.get("reason", ""),
            params.get("minutes", default_minutes),
        )

    def minutes(self) -> int | None:
        """The duration asked for; None for the default. ValidationFailed for anything but whole minutes."""
        text = self.minutes_text.strip()
        if text and not text.isdigit():
            raise ValidationFailed([("minutes", "must be a whole number of minutes, 1 or more")])
        return int(text) if text else None

    def context(self) -> dict[str, Any]:
        """What the form's page shows."""
        return {
            "block_kind": self.block,
            "block_label": OverrideBlock(self.block).label if self.block in OverrideBlock.values else self.block,
            "scope": self.scope,
            "scope_label": OverrideScope(self.scope).label if self.scope in OverrideScope.values else self.scope,
            "target": self.target,
            "workflow": self.workflow,
            "batch": self.batch,
            "proposal": self.proposal,
            "duty": override_duty(workflow=self.workflow, at=timezone.now()),
            "max_minutes": self.workflow.override_max_minutes,
            "reason": self.reason,
            "reason_rule": reasons.OVERRIDE,
            "minutes": self.minutes_text,
            "errors": {},
        }
