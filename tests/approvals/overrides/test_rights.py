"""Who may override: one answer for the grant, the blocked page and the review screen. The person who
asked for a change never lifts what blocks it, under any case of their name, nor as the person who
started its batch; the granter or the group on duty ends an override; an approver other than the
granter reviews it."""

import pytest
import time_machine
from django.urls import reverse

from approvals.models import Override, ProposalStatus, StopScope
from approvals.overrides.rights import asked_for_any, group_ids_of, may_act_under, on_duty, review_refusal
from approvals.overrides.selectors import blocked_overview, proposal_overrides_for
from approvals.overrides.services import override_grant
from approvals.stops.services import stop_engage
from approvals.workflows.schedule import override_duty
from audit.services import Actor
from core.errors import NotAllowed
from tests.helpers.factories import UserFactory
from tests.helpers.overrides import DAY, NIGHT, REASON, on_call_workflow


@pytest.fixture
def on_call(db):
    return on_call_workflow()


def test_the_requester_named_in_another_case_is_refused_by_the_grant_and_offered_nothing(on_call):
    waiting = on_call.proposal(status=ProposalStatus.PENDING, requested_by="OPS", requested_by_user=None)
    with time_machine.travel(NIGHT, tick=False):
        assert not proposal_overrides_for(user=on_call.ops, proposal=waiting).offer
        with pytest.raises(NotAllowed, match="you asked for this proposal's changes"):
            override_grant(
                user=on_call.ops, block="after_hours_approval", scope="proposal", proposal=waiting, reason=REASON
            )
    assert not Override.objects.exists()


def test_whoever_started_a_batch_lifts_no_block_of_its_proposals_even_one_asked_for_by_someone_else(client, on_call):
    batch = on_call.batch(requested_by="ops", name="nightly addresses")
    conflict = on_call.proposal(batch=batch, status=ProposalStatus.CONFLICT, requested_by="agent")
    with time_machine.travel(NIGHT, tick=False):
        overview = blocked_overview(user=on_call.ops)
        client.force_login(on_call.ops)
        page = client.get(reverse("review-detail", args=[conflict.pk])).content.decode()
        with pytest.raises(NotAllowed, match="you asked for this proposal's changes"):
            override_grant(user=on_call.ops, block="conflict", scope="proposal", proposal=conflict, reason=REASON)
    [row] = overview.conflicts
    assert row.proposal == conflict and not row.may_override
    assert conflict.record_id in page and ">Override</a>" not in page


def test_someone_else_on_duty_may_lift_that_block(client, on_call):
    batch = on_call.batch(requested_by="ops")
    conflict = on_call.proposal(batch=batch, status=ProposalStatus.CONFLICT, requested_by="ops")
    colleague = UserFactory(username="ops2")
    colleague.groups.add(on_call.ops_managers)
    client.force_login(colleague)
    with time_machine.travel(NIGHT, tick=False):
        [row] = blocked_overview(user=colleague).conflicts
        assert ">Override</a>" in client.get(reverse("review-detail", args=[conflict.pk])).content.decode()
        granted = override_grant(user=colleague, block="conflict", scope="proposal", proposal=conflict, reason=REASON)
    assert row.may_override
    assert granted.granted_by == colleague


def test_a_batch_or_workflow_override_is_refused_to_whoever_asked_for_an_open_change_in_it(on_call):
    batch = on_call.batch()
    on_call.proposal(batch=batch, requested_by="Ops", requested_by_user=None)
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad run", actor=Actor.user(on_call.lead))
    assert asked_for_any(user=on_call.ops, workflow=on_call.workflow, batch=batch)
    assert asked_for_any(user=on_call.ops, workflow=on_call.workflow)
    assert not asked_for_any(user=on_call.lead, workflow=on_call.workflow, batch=batch)


def test_duty_follows_the_schedule_and_the_groups_read_once(on_call):
    ops_groups, lead_groups = group_ids_of(on_call.ops), group_ids_of(on_call.lead)
    night = override_duty(workflow=on_call.workflow, at=NIGHT)
    day = override_duty(workflow=on_call.workflow, at=DAY)
    assert on_duty(duty=night, group_ids=ops_groups) and not on_duty(duty=night, group_ids=lead_groups)
    assert on_duty(duty=day, group_ids=lead_groups) and not on_duty(duty=day, group_ids=ops_groups)


def test_the_granter_or_the_group_on_duty_ends_an_override_and_another_approver_reviews_it(on_call):
    batch = on_call.batch()
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad run", actor=Actor.user(on_call.lead))
    with time_machine.travel(NIGHT, tick=False):
        override = override_grant(user=on_call.ops, block="stop_switch", scope="batch", batch=batch, reason=REASON)
    night = override_duty(workflow=on_call.workflow, at=NIGHT)
    day = override_duty(workflow=on_call.workflow, at=DAY)
    lead_groups = group_ids_of(on_call.lead)
    assert may_act_under(user=on_call.ops, override=override, duty=day, group_ids=group_ids_of(on_call.ops))
    assert may_act_under(user=on_call.lead, override=override, duty=day, group_ids=lead_groups)
    assert not may_act_under(user=on_call.lead, override=override, duty=night, group_ids=lead_groups)
    assert review_refusal(user=on_call.lead, override=override, group_ids=lead_groups) == ""
    on_call.ops.groups.add(on_call.leads)
    assert review_refusal(user=on_call.ops, override=override, group_ids=group_ids_of(on_call.ops)) == (
        "you granted this override; another approver reviews it"
    )
    assert review_refusal(user=on_call.agent, override=override, group_ids=set()) == (
        "only the approver group of address-updates reviews its overrides"
    )
