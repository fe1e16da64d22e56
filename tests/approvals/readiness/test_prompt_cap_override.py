"""An override of the canary cap lifts a live workflow's prompt-version cap the same way."""

from datetime import timedelta

import pytest
import time_machine

from approvals.applying.services import Outcome, proposals_apply
from approvals.models import PromptRelease, Stage
from approvals.overrides.services import override_grant
from audit.models import AuditEvent
from core.errors import InvalidTransition
from records.models import Change
from tests.helpers.overrides import NIGHT, REASON, on_call_workflow


def test_an_override_of_the_canary_cap_lets_a_held_versions_writes_past_it(db):
    on_call = on_call_workflow(stage=Stage.LIVE, canary_daily_limit=1)
    waiting = [on_call.proposal(prompt_version="address-update@8") for _ in range(3)]
    PromptRelease.objects.create(workflow=on_call.workflow, prompt_version="address-update@8")
    ids = [p.pk for p in waiting]
    with time_machine.travel(NIGHT, tick=False):
        results = proposals_apply(proposal_ids=ids, worker="w")
        assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.WAITING, Outcome.WAITING]
        assert results[1].detail.startswith("prompt version address-update@8 of address-updates is not promoted")
        override = override_grant(
            user=on_call.ops, block="canary_cap", scope="workflow", reason=REASON, workflow=on_call.workflow
        )
        assert [r.outcome for r in proposals_apply(proposal_ids=ids[1:], worker="w")] == [Outcome.APPLIED] * 2
    assert Change.objects.filter(prompt_version="address-update@8").count() == 3
    uses = AuditEvent.objects.filter(action="override.used", details__override_id=override.pk)
    assert uses.count() == 2


def test_a_live_workflow_with_nothing_held_has_no_cap_to_lift(db):
    on_call = on_call_workflow(stage=Stage.LIVE)
    with time_machine.travel(NIGHT + timedelta(minutes=1), tick=False), pytest.raises(InvalidTransition):
        override_grant(user=on_call.ops, block="canary_cap", scope="workflow", reason=REASON, workflow=on_call.workflow)
