"""After hours, the on-call group decides a proposal that waits for the daytime approvers, under an
override of that proposal: through the decision services and the review screen, never their own."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from approvals.models import Override, ProposalStatus
from approvals.overrides.services import override_grant
from approvals.review.services import proposal_approve, proposal_claim, proposal_reject
from audit.models import AuditEvent
from core.errors import NotAllowed
from tests.helpers.factories import UserFactory
from tests.helpers.overrides import DAY, NIGHT, REASON, on_call_workflow
from tests.helpers.queued import Queued
from tests.helpers.sight import looked_at


@pytest.fixture
def waiting(on_call):
    return on_call.proposal(status=ProposalStatus.PENDING)


def grant(on_call, proposal, **kwargs):
    kwargs.setdefault("user", on_call.ops)
    return override_grant(block="after_hours_approval", scope="proposal", proposal=proposal, reason=REASON, **kwargs)


def refusals():
    return list(
        AuditEvent.objects.filter(action="proposal.decision_refused").values_list("actor_label", "details__refusal")
    )


def test_without_an_override_the_ops_manager_cannot_decide(on_call, waiting):
    with time_machine.travel(NIGHT, tick=False), pytest.raises(NotAllowed, match="may not review"):
        proposal_approve(proposal=waiting, reviewer=on_call.ops)
    waiting.refresh_from_db()
    assert waiting.status == ProposalStatus.PENDING
    assert refusals() == [("ops", "no_permission")]


def test_under_an_override_the_ops_manager_approves_and_the_use_is_recorded(
    on_call, waiting, django_capture_on_commit_callbacks, queued
):
    with time_machine.travel(NIGHT, tick=False):
        override = grant(on_call, waiting)
        with django_capture_on_commit_callbacks(execute=True):
            outcome = proposal_approve(proposal=waiting, reviewer=on_call.ops, note="checked the ticket")
    assert outcome.approved
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by) == (ProposalStatus.APPROVED, on_call.ops)
    used = AuditEvent.objects.get(action="override.used")
    assert (used.actor_label, used.proposal_id) == ("ops", waiting.pk)
    assert used.details["what"] == "decided while the daytime approvers were off duty"
    approved = AuditEvent.objects.get(action="proposal.approved")
    assert (approved.actor_label, approved.details["override_id"]) == ("ops", override.pk)
    assert queued == [Queued("approvals.apply_approved", [[waiting.pk]])]


def test_another_member_of_the_after_hours_group_may_use_the_override_to_reject(on_call, waiting):
    second = UserFactory(username="kim")
    second.groups.add(on_call.ops_managers)
    with time_machine.travel(NIGHT, tick=False):
        grant(on_call, waiting)
        proposal_reject(proposal=waiting, reviewer=second, reason="the ticket asks for something else")
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by) == (ProposalStatus.REJECTED, second)
    assert AuditEvent.objects.get(action="override.used").actor_label == "kim"


def test_the_person_who_asked_never_decides_even_under_someone_elses_override(on_call):
    mine = on_call.proposal(status=ProposalStatus.PENDING, requested_by="ops", requested_by_user=on_call.ops)
    second = UserFactory(username="kim")
    second.groups.add(on_call.ops_managers)
    with time_machine.travel(NIGHT, tick=False):
        with pytest.raises(NotAllowed):
            grant(on_call, mine)  # ops cannot override their own request
        grant(on_call, mine, user=second)
        with pytest.raises(NotAllowed, match="You asked for this change"):
            proposal_approve(proposal=mine, reviewer=on_call.ops)
    assert refusals() == [("ops", "requester")]
    assert not AuditEvent.objects.filter(action="override.used").exists()


def test_two_approvals_still_need_two_people(db):
    on_call = on_call_workflow(two_person_fields=["shipping_address"])
    waiting = on_call.proposal(status=ProposalStatus.PENDING)
    with time_machine.travel(NIGHT, tick=False):
        grant(on_call, waiting)
        assert proposal_approve(proposal=waiting, reviewer=on_call.ops).first_of_two
        with pytest.raises(Exception, match="the second must come from someone else"):
            proposal_approve(proposal=waiting, reviewer=on_call.ops)
    waiting.refresh_from_db()
    assert waiting.status == ProposalStatus.PENDING


def test_an_expired_override_permits_no_decision_before_the_beat_task_marks_it(on_call, waiting):
    with time_machine.travel(NIGHT, tick=False):
        override = grant(on_call, waiting, minutes=15)
    with time_machine.travel(NIGHT + timedelta(minutes=15), tick=False), pytest.raises(NotAllowed):
        proposal_approve(proposal=waiting, reviewer=on_call.ops)
    assert Override.objects.get(pk=override.pk).expired_recorded_at is None
    waiting.refresh_from_db()
    assert waiting.status == ProposalStatus.PENDING
    assert not AuditEvent.objects.filter(action="override.used").exists()


def test_a_claim_is_allowed_under_the_override(on_call, waiting):
    with time_machine.travel(NIGHT, tick=False):
        with pytest.raises(NotAllowed):
            proposal_claim(proposal=waiting, reviewer=on_call.ops)
        grant(on_call, waiting)
        assert proposal_claim(proposal=waiting, reviewer=on_call.ops).claimed_by == on_call.ops


# The review screen -------------------------------------------------------------------------------


def page(client, user, proposal, at=NIGHT):
    client.force_login(user)
    with time_machine.travel(at, tick=False):
        return client.get(reverse("review-detail", args=[proposal.pk]))


def test_at_night_the_ops_manager_opens_the_waiting_proposal_and_is_offered_an_override(client, on_call, waiting):
    response = page(client, on_call.ops, waiting)
    assert response.status_code == 200
    html = response.content.decode()
    assert "support-leads decide this, at any hour; it is outside their hours until" in html
    assert "block=after_hours_approval&amp;scope=proposal&amp;target=" in html
    assert ">Approve</button>" not in html


def test_under_the_override_the_review_screen_lets_ops_approve(client, on_call, waiting):
    with time_machine.travel(NIGHT, tick=False):
        grant(on_call, waiting)
    html = page(client, on_call.ops, waiting).content.decode()
    assert "You decide this under the after-hours override granted by ops" in html
    assert ">Approve</button>" in html and ">Reject</button>" in html
    with time_machine.travel(NIGHT, tick=False):
        response = client.post(reverse("review-approve", args=[waiting.pk]), looked_at(waiting, on_call.ops))
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by) == (ProposalStatus.APPROVED, on_call.ops)


def test_by_day_the_on_call_group_may_look_but_not_decide(client, on_call, waiting):
    html = page(client, on_call.ops, waiting, at=DAY).content.decode()
    assert "You do not review the workflow address-updates" in html
    assert "block=after_hours_approval" not in html


def test_people_with_no_part_in_the_workflow_cannot_open_it(client, on_call, waiting):
    assert page(client, UserFactory(username="stranger"), waiting).status_code == 404
    decided = on_call.proposal(status=ProposalStatus.APPLIED)
    assert page(client, on_call.ops, decided).status_code == 404


def test_the_blocked_page_links_each_waiting_proposal_to_its_review_screen(client, on_call, waiting):
    client.force_login(on_call.ops)
    with time_machine.travel(NIGHT, tick=False):
        html = client.get(reverse("blocked")).content.decode()
    url = reverse("review-detail", args=[waiting.pk])
    assert f'<a href="{url}">Proposal {waiting.pk}</a>' in html
    assert f'<input type="hidden" name="next" value="{url}">' in html


def test_granting_from_the_review_screen_comes_back_to_it(client, on_call, waiting):
    client.force_login(on_call.ops)
    url = reverse("review-detail", args=[waiting.pk])
    form = {"block": "after_hours_approval", "scope": "proposal", "target": waiting.pk, "next": url}
    with time_machine.travel(NIGHT, tick=False):
        response = client.post(reverse("override-grant"), {**form, "reason": REASON, "minutes": "30"})
        elsewhere = client.post(
            reverse("override-grant"), {**form, "target": on_call.proposal(status="pending").pk, "reason": REASON,
                                        "next": "https://example.com/"}
        )  # fmt: skip
    assert (response.status_code, response["Location"]) == (302, url)
    assert (elsewhere.status_code, elsewhere["Location"]) == (302, reverse("blocked"))


# The minimisation lint on the review screen ------------------------------------------------------


def test_the_review_screen_names_each_field_the_lint_found_and_never_its_value(client, on_call):
    from approvals.intake.lint import artifact_lint
    from records.models import Customer
    from tests.helpers.factories import ArtifactFactory, RetentionRuleFactory

    proposal = on_call.proposal(status=ProposalStatus.PENDING)
    customer = Customer.objects.get(record_id=proposal.record_id)
    Customer.objects.filter(pk=customer.pk).update(
        email="maria.lopez@example.com", support_notes="Asked us never to call before noon about refunds."
    )
    rule = RetentionRuleFactory(workflow=on_call.workflow, kind="prompt", bucket="live")
    artifact = ArtifactFactory.create(
        rule=rule,
        proposal_id=proposal.pk,
        content="Maria (maria.lopez@example.com) moved. Note: asked us never to call before noon about refunds.",
    )
    assert artifact_lint(artifact=artifact) == ["customer.email", "customer.support_notes"]
    client.force_login(on_call.lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert "The AI was given more than this workflow may read." in html
    assert "<strong>customer email</strong> and <strong>customer support notes</strong>" in html
    assert "maria.lopez@example.com" not in html
    assert "never to call before noon" not in html
    assert html.index("The AI was given more") < html.index(">Approve</button>")


# One rule, said the same everywhere -----------------------------------------------------------------


def test_the_approver_group_decides_at_any_hour_so_the_lead_approves_at_night(on_call, waiting, queued):
    with time_machine.travel(NIGHT, tick=False):
        outcome = proposal_approve(proposal=waiting, reviewer=on_call.lead)
    assert outcome.approved
    assert not AuditEvent.objects.filter(action="override.used").exists()


def test_at_night_blocked_tells_the_lead_they_may_decide_and_offers_ops_the_override(client, on_call, waiting):
    client.force_login(on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        as_lead = client.get(reverse("blocked")).content.decode()
        client.force_login(on_call.ops)
        as_ops = client.get(reverse("blocked")).content.decode()
    section = "Pending outside the approvers' hours"
    rule = "A workflow's approver group decides its proposals at any hour, also outside its hours."
    assert section in as_lead and rule in as_lead
    lead_row = as_lead.split(f'id="proposal-{waiting.pk}"')[1].split("</tr>")[0]
    assert "You may decide it now" in lead_row and "Override</button>" not in lead_row
    assert 'support-leads <span class="tag">you</span>, Mon 30 Nov 08:00' in lead_row
    ops_row = as_ops.split(f'id="proposal-{waiting.pk}"')[1].split("</tr>")[0]
    assert "Override</button>" in ops_row and "You may decide it now" not in ops_row
    assert "wait" not in lead_row.lower()
