"""The five-step review page: what a person reads at each step, and what each button does."""

import re
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.models import FieldPolicy, ReadinessReview, ReviewSignature
from approvals.readiness.review import (
    review_decide,
    review_fields_mark,
    review_sign,
    review_start,
    review_step_tick,
    review_walk_choose,
)
from audit.models import AuditEvent
from records.store import RecordRef
from tests.approvals.readiness.conftest import Team, file_marks, walk_every_step
from tests.helpers.factories import ArtifactFactory, ProposalFactory, RetentionRuleFactory, UserFactory, WorkflowFactory
from tests.helpers.seeing import let_see
from tests.helpers.trail import apply_update, revert


def _text(html: str) -> str:
    """The page's words as a person reads them."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'").strip()


def _url(team: Team) -> str:
    return reverse("workflow-review", args=[team.workflow.slug])


def _open_review(client, team: Team, user) -> ReadinessReview:  # type: ignore[no-untyped-def]
    client.force_login(user)
    client.post(_url(team), {"do": "start"})
    return ReadinessReview.objects.get(workflow=team.workflow, signed_off_at__isnull=True)


def test_a_person_who_may_not_see_the_workflow_gets_404_and_one_signed_out_is_sent_to_log_in(client, team: Team):
    client.force_login(UserFactory(username="stranger", is_staff=True))
    assert client.get(_url(team)).status_code == 404
    assert client.post(_url(team), {"do": "start"}).status_code == 404
    assert not ReadinessReview.objects.exists()
    client.logout()
    response = client.get(_url(team))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_whole_walk_through_the_page(client, team: Team):
    url = _url(team)
    review = _open_review(client, team, team.ops)
    page = _text(client.get(url).content.decode())
    assert "1. List every AI task that touches the record" in page
    assert "5. Decide ready or not ready, with actions" in page
    assert "Open: still to do step 1 (AI tasks touching the record)" in page

    response = client.post(url, {"do": "tick", "review": review.pk, "step": "tasks", "note": "Checked the map"})
    assert response.status_code == 302
    response = client.post(url, {"do": "mark", "review": review.pk, **file_marks(team.workflow)}, follow=True)
    assert "Fields marked (step 2)." in _text(response.content.decode())
    client.post(url, {"do": "tick", "review": review.pk, "step": "retention"})
    client.post(url, {"do": "walk", "review": review.pk, "change": str(team.change.id)})
    for step in ("walk.approval", "walk.write", "walk.trace"):
        client.post(url, {"do": "tick", "review": review.pk, "step": step})
    html = client.get(url).content.decode()
    for link in (
        reverse("review-detail", args=[team.change.proposal_id]),
        reverse("trace-change", args=[team.change.id]),
        reverse("record-timeline", args=["customer", team.change.record_id]),
        reverse("change-undo", args=[team.change.id]),
    ):
        assert f'href="{link}"' in html
    assert "approved by Dana Lee" in _text(html)
    revert(team.change, at=timezone.now())
    client.post(url, {"do": "tick", "review": review.pk, "step": "walk.rollback"})
    client.post(url, {"do": "decide", "review": review.pk, "decision": "ready", "actions": "Go live on Monday"})
    response = client.post(url, {"do": "sign", "review": review.pk}, follow=True)
    assert "Signed. The sign-off is waiting for the workflow owner, Olive Grant." in _text(response.content.decode())

    client.force_login(team.owner)
    response = client.post(url, {"do": "sign", "review": review.pk}, follow=True)
    page = _text(response.content.decode())
    assert "The review is signed off: two people signed, one of them the workflow's owner." in page
    signed_off_at = ReadinessReview.objects.get(pk=review.pk).signed_off_at
    assert signed_off_at is not None
    assert f"Signed off on {timezone.localtime(signed_off_at):%Y-%m-%d %H:%M}" in page
    assert "Done by Priya Nair on" in page and "“Checked the map”" in page
    assert "Signed by Priya Nair on" in page and "Signed by Olive Grant (owner) on" in page
    assert "Start a review" in page and "Tick approval" not in page and "Save marks" not in page


def test_deciding_before_the_steps_says_what_is_left(client, team: Team):
    review = _open_review(client, team, team.owner)
    response = client.post(_url(team), {"do": "decide", "review": review.pk, "decision": "ready", "actions": ""})
    assert response.status_code == 409
    assert "finish the steps before deciding: step 1 (AI tasks touching the record)" in _text(response.content.decode())
    assert ReadinessReview.objects.get(pk=review.pk).decision == ""


def test_not_ready_without_actions_is_refused_next_to_the_actions(client, team: Team):
    review = walk_every_step(team)
    client.force_login(team.owner)
    response = client.post(_url(team), {"do": "decide", "review": review.pk, "decision": "not_ready", "actions": ""})
    assert response.status_code == 422
    html = response.content.decode()
    actions_at = html.index('name="actions"')
    error_at = html.index("say what must be done before the workflow is ready")
    assert actions_at < error_at < html.index(">Decide</button>")
    assert ReadinessReview.objects.get(pk=review.pk).decision == ""


def test_signing_twice_and_signing_undecided_are_refused_with_a_clear_message(client, team: Team):
    review = walk_every_step(team)
    client.force_login(team.owner)
    response = client.post(_url(team), {"do": "sign", "review": review.pk})
    assert response.status_code == 409
    assert "decide ready or not ready (step 5) before signing" in _text(response.content.decode())
    review_decide(review=review, user=team.owner, decision="ready", actions="")
    client.post(_url(team), {"do": "sign", "review": review.pk})
    response = client.post(_url(team), {"do": "sign", "review": review.pk})
    assert response.status_code == 409
    assert "the second signature must be another person's" in _text(response.content.decode())
    assert AuditEvent.objects.filter(action="review.signed").count() == 1


def test_the_page_flags_each_field_marked_differently_from_the_file(client, team: Team):
    review = review_start(workflow=team.workflow, user=team.owner)
    review_fields_mark(review=review, user=team.owner, marks=file_marks(team.workflow, shipping_address="read"))
    client.force_login(team.owner)
    page = _text(client.get(_url(team)).content.decode())
    assert "differs from the file: file says suggest, review says read" in page
    assert "1 field differs from the file." in page
    assert page.count("differs from the file:") == 1


def test_marking_write_on_a_high_risk_field_is_refused_next_to_it(client, team: Team):
    review = _open_review(client, team, team.owner)
    marks = file_marks(team.workflow, email="write")
    response = client.post(_url(team), {"do": "mark", "review": review.pk, **marks})
    assert response.status_code == 422
    html = response.content.decode()
    select_at = html.index('name="customer.email"')
    assert select_at < html.index("write is refused on a high-risk field") < html.index('name="customer.phone"')
    assert ReadinessReview.objects.get(pk=review.pk).field_marks == {}


def test_retention_stored_with_no_rule_is_flagged(client, team: Team):
    rule = RetentionRuleFactory(workflow=team.workflow, kind="error_log", bucket="live", window=timedelta(days=14))
    ArtifactFactory(rule=rule)
    rule.delete()
    client.force_login(team.owner)
    client.post(_url(team), {"do": "start"})
    page = _text(client.get(_url(team)).content.decode())
    assert "Stored with no rule to expire it: error log in live processing (1)." in page
    assert "Artifact Live processing Training Analytics Prompt 7d · Olive Grant no rule no rule" in page
    assert "Error log no rule 1 stored with no rule no rule no rule" in page


def test_step_one_lists_the_tasks_on_the_same_records_and_counts_those_out_of_sight(client, team: Team):
    seen = WorkflowFactory(slug="priority-triage", name="Priority triage")
    FieldPolicy.objects.create(workflow=seen, record_type="customer", field="priority", access="write")
    let_see(team.staff, seen)
    hidden = WorkflowFactory(slug="secret-merge")
    FieldPolicy.objects.create(workflow=hidden, record_type="customer", field="full_name", access="read")
    elsewhere = WorkflowFactory(slug="ticket-notes")
    FieldPolicy.objects.create(workflow=elsewhere, record_type="ticket", field="subject", access="read")
    viewer = let_see(UserFactory(username="viewer"), team.workflow)
    review_start(workflow=team.workflow, user=team.owner)
    client.force_login(viewer)
    page = _text(client.get(_url(team)).content.decode())
    assert "Address updates address-updates this one" in page
    assert "Priority triage" not in page and "secret-merge" not in page and "ticket-notes" not in page
    assert "2 more workflows you may not see touch these records too." in page
    assert "You may read this review." in page and "Start a review" not in page

    client.force_login(team.staff)
    page = _text(client.get(_url(team)).content.decode())
    assert "Priority triage priority-triage" in page and "customer.priority: write" in page
    assert "1 more workflow you may not see touches these records too." in page
    assert "ticket-notes" not in page


def test_the_page_runs_a_fixed_number_of_queries(client, team: Team, django_assert_num_queries):
    earlier = review_decide(review=walk_every_step(team), user=team.owner, decision="ready", actions="")
    review_sign(review=earlier, user=team.owner)
    review_sign(review=earlier, user=team.ops)
    review = review_start(workflow=team.workflow, user=team.owner)
    review_walk_choose(review=review, user=team.owner, change_id=team.change.id)
    review_step_tick(review=review, user=team.ops, step="walk.approval")
    client.force_login(team.ops)
    client.get(_url(team))
    with CaptureQueriesContext(connection) as first:
        assert client.get(_url(team)).status_code == 200

    for number, kind in enumerate(("output", "cache", "error_log")):
        other = WorkflowFactory(slug=f"other-{number}")
        FieldPolicy.objects.create(workflow=other, record_type="customer", field="priority", access="write")
        proposal = ProposalFactory(workflow=team.workflow, status="approved", decided_by=team.lead)
        ref = RecordRef("customer", proposal.record_id)
        apply_update(ref, {"shipping_address": f"{number} Quay"}, at=timezone.now(), proposal=proposal)
        ArtifactFactory(rule=RetentionRuleFactory(workflow=team.workflow, kind=kind, bucket="live"))
        past = ReadinessReview.objects.create(
            workflow=team.workflow,
            started_by=team.owner,
            decision="not_ready",
            actions="Rerun the drill",
            signed_off_at=timezone.now() - timedelta(days=number + 1),
        )
        ReviewSignature.objects.create(review=past, user=team.owner)
        ReviewSignature.objects.create(review=past, user=team.staff)
    with django_assert_num_queries(len(first.captured_queries)):
        assert client.get(_url(team)).status_code == 200


def _section(html: str, section: str) -> str:
    start = html.index(f'<li id="{section}">')
    return _text(html[start : html.index("</li>", start)])


def test_a_step_ticked_from_a_page_out_of_date_is_refused_in_that_step(client, team: Team):
    review = _open_review(client, team, team.owner)
    review_step_tick(review=review, user=team.ops, step="retention")
    response = client.post(_url(team), {"do": "tick", "review": review.pk, "step": "retention"})
    assert response.status_code == 409
    html = response.content.decode()
    assert "step 3 (retention checked) was ticked by Priya Nair already" in _section(html, "step-3")
    assert "Done by Priya Nair on" in _section(html, "step-3")
    assert ReadinessReview.objects.get(pk=review.pk).steps["retention"]["by"] == "ops"


def test_a_change_of_another_workflow_is_refused_next_to_the_choice(client, team: Team):
    elsewhere = ProposalFactory(workflow=WorkflowFactory(slug="refund-notes"), status="approved")
    ref = RecordRef("customer", elsewhere.record_id)
    change = apply_update(ref, {"shipping_address": "2 Quay"}, at=timezone.now(), proposal=elsewhere)
    review = _open_review(client, team, team.owner)
    response = client.post(_url(team), {"do": "walk", "review": review.pk, "change": str(change.id)})
    assert response.status_code == 422
    html = response.content.decode()
    error = html.index("no applied change of this workflow has that id; pick one from the list")
    assert html.index('id="walk-change"') < error < html.index(">Choose change</button>")


def test_the_workflows_page_links_each_workflow_to_its_review(client, team: Team):
    client.force_login(team.owner)
    html = client.get(reverse("workflow-list")).content.decode()
    assert f'<a href="{_url(team)}">Five-step review</a>' in html
