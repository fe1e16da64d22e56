"""One rule per kind of reason: the service refuses a short one naming the field, the page asks the
browser for the same minimum, and the database holds the override rule as well."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from guardian.shortcuts import assign_perm

from approvals import reasons
from approvals.models import Override, OverrideBlock, OverrideScope, StopSwitch
from core.errors import ValidationFailed
from tests.helpers.factories import GroupFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.overrides import NIGHT, on_call_workflow


@pytest.mark.parametrize("rule", [reasons.REJECTION, reasons.STOP, reasons.UNDO, reasons.OVERRIDE])
def test_a_reason_one_character_short_is_refused_naming_the_field_and_one_long_enough_is_kept_stripped(rule):
    short = "x" * (rule.minimum - 1)
    with pytest.raises(ValidationFailed) as refused:
        rule.clean(f"  {short}  ")
    assert refused.value.problems == [("reason", rule.refusal.format(minimum=rule.minimum))]
    assert rule.clean(f"  {short}y  ") == f"{short}y"


def test_the_flag_of_an_override_names_its_note():
    assert reasons.OVERRIDE_FLAG.problem("too short") == ("note", "write at least 10 characters saying what is wrong")


def test_the_pages_ask_the_browser_for_each_rule_s_minimum(client, db):
    lead = UserFactory(username="lead")
    group = GroupFactory(name="support-leads")
    lead.groups.add(group)
    workflow = WorkflowFactory(slug="address-updates", approver_group=group)
    assign_perm("approvals.review_workflow", group, workflow)
    proposal = ProposalFactory(workflow=workflow)
    client.force_login(lead)

    detail = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    stop = client.get(reverse("stop-new")).content.decode()

    assert f'name="reason" required minlength="{reasons.REJECTION.minimum}"' in detail
    assert f'minlength="{reasons.STOP.minimum}"' in stop


def test_the_override_form_asks_for_the_override_rule_s_minimum(client, db):
    on_call = on_call_workflow()
    client.force_login(on_call.ops)
    query = {"block": "stop_switch", "scope": "workflow", "target": str(on_call.workflow.pk)}
    page = client.get(reverse("override-grant"), query)
    assert f'required minlength="{reasons.OVERRIDE.minimum}"' in page.content.decode()


def test_a_stop_with_too_short_a_reason_is_refused_in_the_form_s_words_and_nothing_is_engaged(client, db):
    ops = UserFactory(username="ops")
    ops.groups.add(GroupFactory(name="ops-managers"))
    client.force_login(ops)
    answer = client.post(reverse("stop-new"), {"scope": "global", "reason": " ab ", "confirm": "on"})
    assert answer.status_code == 422
    assert reasons.STOP.sentence in answer.content.decode()
    assert not StopSwitch.objects.exists()


def test_the_database_refuses_an_override_whose_reason_is_shorter_than_the_rule(db):
    on_call = on_call_workflow()
    fields = {
        "workflow": on_call.workflow,
        "scope": OverrideScope.WORKFLOW,
        "block": OverrideBlock.CANARY_CAP,
        "granted_by": on_call.ops,
        "granted_group": "ops-managers",
        "granted_at": NIGHT,
        "expires_at": NIGHT + timedelta(hours=1),
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        Override.objects.create(reason="x" * (reasons.OVERRIDE.minimum - 1), **fields)
    kept = Override.objects.create(reason="x" * reasons.OVERRIDE.minimum, **fields)
    assert Override.objects.get(pk=kept.pk).reason == "x" * reasons.OVERRIDE.minimum
