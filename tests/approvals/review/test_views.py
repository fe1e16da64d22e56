import json
from datetime import timedelta
from html import unescape as html_unescape

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.models import FieldPolicy, FollowUp, Proposal, ProposalStatus
from audit.models import AuditEvent
from records.models import Change, Customer
from tests.helpers.factories import (
    BatchFactory,
    CustomerFactory,
    GroupFactory,
    OrderFactory,
    ProposalFactory,
    TicketFactory,
    UserFactory,
    WorkflowFactory,
)
from tests.helpers.pages import error_messages
from tests.helpers.queued import Queued
from tests.helpers.receiver import Receiver
from tests.helpers.sight import group_looked_at, looked_at

HTMX = {"HTTP_HX_REQUEST": "true"}


def ago(**delta: int):  # type: ignore[no-untyped-def]
    return timezone.now() - timedelta(**delta)


@pytest.fixture
def hidden_workflow(db):  # type: ignore[no-untyped-def]
    """A workflow the leads may not review: nothing of it may show."""
    workflow = WorkflowFactory(slug="secret-finance", name="Secret finance")
    assign_perm("approvals.review_workflow", GroupFactory(name="finance"), workflow)
    return workflow


def test_the_queue_shows_only_what_the_viewer_may_review_oldest_first(client, workflow, hidden_workflow, lead):
    newer = ProposalFactory(workflow=workflow, created_at=ago(minutes=5))
    older = ProposalFactory(workflow=workflow, created_at=ago(hours=30))
    secret = ProposalFactory(workflow=hidden_workflow, record_id="CUS-99999", created_at=ago(days=3))
    ProposalFactory(workflow=workflow, status=ProposalStatus.APPROVED)
    client.force_login(lead)
    html = client.get(reverse("review-queue")).content.decode()
    assert html.index(older.record_id) < html.index(newer.record_id)
    assert secret.record_id not in html
    assert "secret-finance" not in html and "Secret finance" not in html
    assert 'data-count="all">2<' in html
    assert 'data-count="address-updates">2<' in html
    assert "is-overdue" in html  # the 30-hour-old one wears a red age badge


def test_the_queue_filters_by_workflow_batch_action_field_requester_and_age(client, workflow, lead, leads_group):
    other = WorkflowFactory(slug="refund-notes")
    assign_perm("approvals.review_workflow", leads_group, other)
    batch = BatchFactory(workflow=workflow)
    in_batch = ProposalFactory(workflow=workflow, batch=batch, created_at=ago(hours=2))
    phone = ProposalFactory(
        workflow=workflow, changes={"phone": "+44 1"}, base={}, requested_by="maria.lopez", created_at=ago(minutes=1)
    )
    archive = ProposalFactory(workflow=other, action="archive", changes={}, base={}, created_at=ago(days=2))
    client.force_login(lead)

    def shown(**params: str) -> set[str]:
        html = client.get(reverse("review-queue"), params).content.decode()
        return {p.record_id for p in (in_batch, phone, archive) if p.record_id in html}

    assert shown() == {in_batch.record_id, phone.record_id, archive.record_id}
    assert shown(workflow="refund-notes") == {archive.record_id}
    assert shown(batch=str(batch.pk)) == {in_batch.record_id}
    assert shown(action="archive") == {archive.record_id}
    assert shown(field="phone") == {phone.record_id}
    assert shown(requester="Maria.Lopez") == {phone.record_id}
    assert shown(age="1h") == {in_batch.record_id, archive.record_id}
    assert shown(age="1d") == {archive.record_id}
    response = client.get(reverse("review-queue"), {"batch": "seven", "age": "forever"})
    html = response.content.decode()
    assert "batch: &#x27;seven&#x27; is not a batch number; that filter was left out." in html
    assert "age: &#x27;forever&#x27; is not one of" in html


def test_the_queue_filter_answers_htmx_with_the_queue_partial(client, workflow, lead):
    ProposalFactory(workflow=workflow)
    client.force_login(lead)
    response = client.get(reverse("review-queue"), {"action": "update"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'class="filters"' not in html
    assert 'aria-label="Pending proposals"' in html
    assert 'id="review-counts"' in html


def _queue_of(workflow, size: int) -> None:  # type: ignore[no-untyped-def]
    batch = BatchFactory(workflow=workflow)
    customers = Customer.objects.bulk_create(
        [Customer(record_id=f"CUS-{70000 + size * 100 + n}", full_name=f"C {n}") for n in range(size)]
    )
    for n, customer in enumerate(customers):
        ProposalFactory(workflow=workflow, batch=batch if n % 2 else None, record_id=customer.record_id)


@pytest.mark.parametrize("size", [3, 40])
def test_the_queue_page_runs_a_fixed_number_of_queries(client, workflow, lead, django_assert_num_queries, size):
    _queue_of(workflow, size)
    first = Proposal.objects.earliest("id")
    ProposalFactory(workflow=workflow, record_id=first.record_id).approvals.create(user=UserFactory())
    client.force_login(lead)
    # session, user, reviewable workflows, counts per workflow, rows, their approvals, batches with pending work,
    # and the banners on every page (engaged switches, the viewer's stop rights: 3; batches still writing: 1;
    # stores that do not answer: 1; the audit chain found broken: 1)
    with django_assert_num_queries(13):
        response = client.get(reverse("review-queue"))
    assert response.status_code == 200
    assert response.content.decode().count("data-row") == min(size + 1, 25)


def test_counts_refresh_as_a_partial(client, workflow, hidden_workflow, lead):
    ProposalFactory(workflow=workflow)
    ProposalFactory(workflow=hidden_workflow)
    client.force_login(lead)
    response = client.get(reverse("review-counts"), **HTMX)
    html = response.content.decode()
    assert html.strip().startswith('<nav id="review-counts"')
    assert 'data-count="all">1<' in html
    assert 'hx-trigger="proposalDecided from:body"' in html


def test_one_screen_shows_live_values_the_diff_who_why_model_batch_and_history(client, workflow, lead):
    customer = CustomerFactory(full_name="Ewan McGregor", shipping_address="4 Old Mill Lane, Leith")
    batch = BatchFactory(workflow=workflow, name="November addresses")
    proposal = ProposalFactory(
        workflow=workflow,
        batch=batch,
        record_id=customer.record_id,
        run_id="run-2026-11-27-0042",
        requested_by="maria.lopez",
        confidence=0.87,
    )
    ProposalFactory(workflow=workflow, batch=batch, status=ProposalStatus.APPROVED)
    also = ProposalFactory(workflow=workflow, record_id=customer.record_id, changes={"phone": "+44 2"}, base={})
    Change.objects.create(
        record_type="customer",
        record_id=customer.record_id,
        action="update",
        before={"priority": "normal"},
        after={"priority": "high"},
        version_before=1,
        version_after=2,
        workflow_slug="address-updates",
        applied_by="worker",
    )
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert f'<a href="/records/customer/{customer.record_id}/"' in html
    assert "Ewan McGregor" in html
    assert '<td class="current"><div class="value">4 Old Mill Lane, Leith</div></td>' in html
    assert '<td class="proposed"><div class="value">12 Harbour Road, Leith</div></td>' in html
    assert "<del>4</del><ins>12</ins>" in html and "<del>Old</del><ins>Harbour</ins>" in html
    assert "run <code>run-2026-11-27-0042</code> · for <strong>maria.lopez</strong>" in html
    assert "Customer asked for the new address in ticket T-881" in html and "87% sure" in html
    assert "gpt-x 2026-10-01 · prompt <code>address-update@7</code>" in html
    assert "November addresses</a> · 1 of 2 decided" in html
    assert "Update priority · address-updates" in html
    assert f"#{also.pk} Update phone" in html
    assert ">Approve</button>" in html and ">Reject</button>" in html
    assert "AI saw" not in html  # nothing changed since the AI read the record


def test_a_stale_proposal_says_so_plainly_with_all_three_values(client, workflow, lead):
    proposal = ProposalFactory(workflow=workflow)
    Customer.objects.filter(record_id=proposal.record_id).update(shipping_address="9 Quay Street, Leith")
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert "The record changed after the AI read it." in html
    assert "the AI saw “<strong>4 Old Mill Lane, Leith</strong>”" in html
    assert "the record now holds “<strong>9 Quay Street, Leith</strong>”" in html
    assert "the AI proposes “<strong>12 Harbour Road, Leith</strong>”" in html
    assert '<th scope="col">AI saw</th>' in html


def test_a_merge_shows_both_records_the_surviving_values_and_the_rows_that_move(client, workflow, lead):
    duplicate = CustomerFactory(full_name="Ana Ruiz", phone="+44 1111")
    survivor = CustomerFactory(full_name="Ana Ruiz-Diaz", phone="")
    order = OrderFactory(customer=duplicate)
    ticket = TicketFactory(customer=duplicate)
    OrderFactory(customer=survivor)
    proposal = ProposalFactory(
        workflow=workflow, action="merge", record_id=duplicate.record_id, merge_into=survivor.record_id, changes={}
    )
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert f"Duplicate {duplicate.record_id}" in html and f"Survivor {survivor.record_id}" in html
    assert '<div class="value surviving">Ana Ruiz-Diaz</div>' in html
    assert f"1 order ({order.record_id})" in html and f"1 ticket ({ticket.record_id})" in html


def test_the_detail_page_runs_a_fixed_number_of_queries(client, workflow, lead, django_assert_num_queries):
    customer = CustomerFactory()
    batch = BatchFactory(workflow=workflow)

    def count_for(extra: int) -> int:
        proposal = ProposalFactory(workflow=workflow, batch=batch, record_id=customer.record_id)
        for n in range(extra):
            ProposalFactory(workflow=workflow, batch=batch, record_id=customer.record_id)
            Change.objects.create(
                record_type="customer",
                record_id=customer.record_id,
                action="update",
                before={},
                after={"priority": "high"},
                version_before=n + 1,
                version_after=n + 2,
                applied_by="worker",
            )
        client.force_login(lead)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("review-detail", args=[proposal.pk])).status_code == 200
        return len(queries)

    assert count_for(0) == count_for(12)


def test_the_requester_sees_why_there_are_no_buttons(client, workflow, agent, lead):
    mine = ProposalFactory(workflow=workflow, requested_by="lead")
    theirs = ProposalFactory(workflow=workflow, requested_by="agent")
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[mine.pk])).content.decode()
    assert "You asked for this change, so you cannot approve or reject it" in html
    assert ">Approve</button>" not in html and ">Reject</button>" not in html
    client.force_login(agent)  # agent reviews nothing: being named as requester shows no workflow
    assert client.get(reverse("review-detail", args=[theirs.pk])).status_code == 404
    agents = GroupFactory(name="support-agents")
    agent.groups.add(agents)
    assign_perm("approvals.view_workflow", agents, workflow)  # agents may now see the workflow
    html = client.get(reverse("review-detail", args=[theirs.pk])).content.decode()
    assert "You asked for this change" in html and ">Approve</button>" not in html


def test_a_proposal_outside_the_permission_is_not_found(client, hidden_workflow, lead):
    proposal = ProposalFactory(workflow=hidden_workflow)
    client.force_login(lead)
    assert client.get(reverse("review-detail", args=[proposal.pk])).status_code == 404
    response = client.post(reverse("review-approve", args=[proposal.pk]), {"revision": "1"})
    assert response.status_code == 404
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    refused = AuditEvent.objects.get(action="proposal.decision_refused")
    assert (refused.actor_label, refused.details["refusal"]) == ("lead", "no_permission")


def test_approve_over_htmx_swaps_in_the_next_proposal_pushes_its_url_and_fires_the_event(
    queued, client, workflow, lead, django_capture_on_commit_callbacks
):
    first = ProposalFactory(workflow=workflow, created_at=ago(minutes=3))
    mine = ProposalFactory(workflow=workflow, created_at=ago(minutes=2), requested_by="lead")
    following = ProposalFactory(workflow=workflow, created_at=ago(minutes=1))
    client.force_login(lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("review-approve", args=[first.pk]) + "?workflow=address-updates", looked_at(first, lead), **HTMX
        )
    assert queued == [Queued("approvals.apply_approved", [[first.pk]])]
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'class="topbar"' not in html
    assert html.lstrip().startswith('<article class="proposal"')
    assert f'data-proposal="{following.pk}"' in html  # the requester's own proposal is passed by
    assert f"Approved the update of {first.record_id}; it will be applied shortly." in html
    assert response["HX-Push-Url"] == reverse("review-detail", args=[following.pk]) + "?workflow=address-updates"
    assert json.loads(response["HX-Trigger"]) == {"proposalDecided": {"id": first.pk, "status": "approved"}}
    first.refresh_from_db()
    assert first.status == ProposalStatus.APPROVED
    assert mine.pk != following.pk


def test_without_javascript_a_decision_is_a_post_and_a_redirect(client, workflow, lead):
    first = ProposalFactory(workflow=workflow, created_at=ago(minutes=2))
    second = ProposalFactory(workflow=workflow, created_at=ago(minutes=1))
    client.force_login(lead)
    response = client.post(
        reverse("review-reject", args=[first.pk]), {**looked_at(first, lead), "reason": "wrong customer"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("review-detail", args=[second.pk])
    page = client.get(response["Location"]).content.decode()
    assert f"Rejected the update of {first.record_id}." in page
    response = client.post(reverse("review-approve", args=[second.pk]), looked_at(second, lead))
    assert response["Location"] == reverse("review-queue")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.decision_note, second.status) == (
        ProposalStatus.REJECTED,
        "wrong customer",
        ProposalStatus.APPROVED,
    )


def test_the_last_decision_over_htmx_says_the_queue_is_clear(client, workflow, lead):
    proposal = ProposalFactory(workflow=workflow)
    client.force_login(lead)
    seen = looked_at(proposal, lead) | {"revision": "", "reason": "duplicate"}  # a page that sent no revision
    response = client.post(reverse("review-reject", args=[proposal.pk]), seen, **HTMX)
    assert "Nothing left for you to decide here" in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REJECTED
    assert response["HX-Push-Url"] == reverse("review-queue")
    assert "proposalDecided" in response["HX-Trigger"]


def test_a_reject_without_reason_comes_back_as_the_partial_with_the_message(client, workflow, lead):
    proposal = ProposalFactory(workflow=workflow)
    client.force_login(lead)
    response = client.post(reverse("review-reject", args=[proposal.pk]), {"revision": "1", "reason": ""}, **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<article class="proposal"')
    # Next to the reason box, once, in plain words.
    assert error_messages(html) == ["a reason of at least 3 characters is required"]
    assert 'aria-describedby="reject-reason-error"' in html and 'id="reject-reason-error"' in html
    assert "reason:" not in html
    assert 'aria-invalid="true"' in html
    assert "HX-Trigger" not in response
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


def test_a_stale_page_or_a_second_decision_is_refused_plainly(client, workflow, lead, second_lead):
    proposal = ProposalFactory(workflow=workflow, revision=2)
    client.force_login(lead)
    response = client.post(reverse("review-approve", args=[proposal.pk]), {"revision": "1"}, **HTMX)
    assert response.status_code == 409
    assert "changed since you opened it; look at it again before deciding" in response.content.decode()
    proposal.refresh_from_db()
    assert (proposal.status, proposal.revision) == (ProposalStatus.PENDING, 2)
    client.post(reverse("review-approve", args=[proposal.pk]), looked_at(proposal, lead), **HTMX)
    client.force_login(second_lead)
    proposal.refresh_from_db()
    response = client.post(reverse("review-approve", args=[proposal.pk]), looked_at(proposal, second_lead))
    assert response.status_code == 409
    html = response.content.decode()
    assert "was already approved by Dana Lee; nothing was changed" in html
    assert "<html" in html  # without htmx the whole page comes back, with the message
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decided_by) == (ProposalStatus.APPROVED, lead)
    assert AuditEvent.objects.filter(action="proposal.approved", proposal_id=proposal.pk).count() == 1


def test_a_direct_post_by_the_requester_is_refused(client, workflow, agent):
    proposal = ProposalFactory(workflow=workflow, requested_by="agent")
    agents = GroupFactory(name="support-agents")
    agent.groups.add(agents)
    assign_perm("approvals.view_workflow", agents, workflow)
    client.force_login(agent)
    response = client.post(reverse("review-approve", args=[proposal.pk]), {"revision": "1"})
    assert response.status_code == 403
    assert "You asked for this change, so someone else must decide it" in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    assert AuditEvent.objects.get(action="proposal.decision_refused").details["refusal"] == "requester"


def test_approving_a_field_the_workflow_lost_since_is_refused_on_the_screen(queued, client, workflow, lead):
    proposal = ProposalFactory(workflow=workflow)
    workflow.policies.filter(field="shipping_address").update(access="read")
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert (
        "No one can approve this: workflow address-updates may no longer change customer.shipping_address, "
        "since the workflow's file changed. Reject it." in html
    )
    assert 'data-key="approve"' not in html
    assert 'data-key="reject"' in html
    response = client.post(reverse("review-approve", args=[proposal.pk]), looked_at(proposal, lead), **HTMX)
    assert response.status_code == 403
    assert (
        "workflow address-updates may no longer change customer.shipping_address; "
        f"reject proposal {proposal.pk}" in response.content.decode()
    )
    assert queued == []
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


def test_two_person_progress_is_shown_with_who_gave_the_first(client, workflow, lead, second_lead):
    workflow.two_person_fields = ["shipping_address"]
    workflow.save()
    proposal = ProposalFactory(workflow=workflow)
    proposal.approvals.create(user=second_lead)
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert "<strong>1 of 2 approvals</strong> · first by Sam Okafor" in html
    client.force_login(second_lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert "You gave the first approval, so a second person must give the other." in html
    assert ">Approve</button>" not in html and ">Reject</button>" in html


def test_opening_a_proposal_claims_it_and_others_see_who_is_looking(client, workflow, lead, second_lead):
    proposal = ProposalFactory(workflow=workflow)
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert f'hx-post="{reverse("review-claim", args=[proposal.pk])}" hx-trigger="load"' in html
    response = client.post(reverse("review-claim", args=[proposal.pk]), **HTMX)
    assert "You are looking at this, until" in response.content.decode()
    client.force_login(second_lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert "<strong>Dana Lee</strong> is looking at this, until" in html
    assert 'hx-trigger="load"' not in html
    assert "Dana Lee is looking" in client.get(reverse("review-queue")).content.decode()


def test_times_are_shown_in_the_viewers_zone(client, workflow, lead):
    moment = timezone.now().replace(hour=9, minute=30, second=0, microsecond=0) - timedelta(days=1)
    proposal = ProposalFactory(workflow=workflow, created_at=moment)
    client.force_login(lead)
    client.cookies["tz"] = "Asia/Tokyo"
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert '18:30 <span class="ago">(' in html
    assert "JST" in html


def test_a_matched_group_is_opened_from_the_batch_and_approved_with_one_confirmation(client, workflow, lead):
    batch = BatchFactory(workflow=workflow, requested_by="agent")
    proposals = [ProposalFactory(workflow=workflow, batch=batch) for _ in range(3)]
    stale = ProposalFactory(workflow=workflow, batch=batch)
    Customer.objects.filter(record_id=stale.record_id).update(shipping_address="elsewhere")
    client.force_login(lead)
    html = client.get(reverse("review-batch", args=[batch.pk])).content.decode()
    assert "1 stale proposal" in html
    group_url = (
        reverse("review-group", args=[batch.pk])
        + "?action=update&fields=shipping_address&prompt_version=address-update%407"
    )
    assert group_url.replace("&", "&amp;") in html
    html = client.get(group_url).content.decode()
    assert "<strong>3 proposals</strong> in this group, none stale" in html
    assert ">Approve all 3</button>" in html
    assert f"Approve 3 shipping address changes in batch {batch.pk}?" in html  # the dialog's question
    decision = {"decision": "approve", **group_looked_at(batch, proposals, lead)}
    response = client.post(group_url, decision)  # without JavaScript: asked in the page
    assert response.status_code == 200
    assert '<div class="confirm-step"' in response.content.decode()
    assert set(Proposal.objects.values_list("status", flat=True)) == {"pending"}
    response = client.post(group_url, {**decision, "confirmed": "3"})
    assert response.status_code == 302
    assert set(Proposal.objects.filter(pk__in=[p.pk for p in proposals]).values_list("status", flat=True)) == {
        "approved"
    }
    stale.refresh_from_db()
    assert stale.status == ProposalStatus.PENDING
    assert "Approved 3 proposals one by one." in client.get(response["Location"]).content.decode()
    response = client.post(group_url, {**decision, "confirmed": "3"})
    assert response.status_code == 409
    html = response.content.decode()
    assert "this group changed since you opened it: it held 3 proposals and now holds 0" in html
    assert "No pending proposals match this group any more" in html


def test_review_is_first_in_the_navigation(client, lead):
    client.force_login(lead)
    html = client.get(reverse("workflow-list")).content.decode()
    assert html.index('href="/review/"') < html.index('href="/workflows/"')


def test_the_queue_pages_through_the_rows_oldest_first(client, workflow, lead):
    _queue_of(workflow, 30)
    client.force_login(lead)
    html = client.get(reverse("review-queue")).content.decode()
    assert html.count("data-row") == 25
    assert "<span>1–25 of 30</span>" in html and "Next page" in html and "Previous page" not in html
    html = client.get(reverse("review-queue"), {"page": "2"}).content.decode()
    assert html.count("data-row") == 5
    assert "<span>26–30 of 30</span>" in html and "Previous page" in html and "Next page" not in html
    html = client.get(reverse("review-queue"), {"action": "update"}).content.decode()
    # filtered: the counts are taken under the filters anyway, so the pager knows the total too
    assert "<span>1–25 of 30</span>" in html and "Next page" in html


def test_only_the_object_permission_opens_the_queue_not_being_a_superuser(client, workflow, hidden_workflow):
    admin = UserFactory(username="owner", is_superuser=True, is_staff=True)
    proposal = ProposalFactory(workflow=workflow)
    batch = BatchFactory(workflow=hidden_workflow)
    client.force_login(admin)
    html = client.get(reverse("review-queue")).content.decode()
    assert proposal.record_id not in html and 'data-count="all">0<' in html
    assert client.get(reverse("review-detail", args=[proposal.pk])).status_code == 404
    assert client.get(reverse("review-batch", args=[batch.pk])).status_code == 404
    assert client.post(reverse("review-approve", args=[proposal.pk]), {"revision": "1"}).status_code == 404
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


WEBHOOK = {"kind": "webhook", "params": {"url": "https://hooks.example.com/shipping", "payload": {"ticket": "T-881"}}}
EMAIL = {"kind": "email_customer", "params": {"template": "address-confirmed"}}


def test_the_review_screen_shows_each_follow_up_before_the_decision_and_sends_nothing(client, workflow, lead):
    customer = CustomerFactory(full_name="Maria Lopez", email="maria@example.com")
    proposal = ProposalFactory(workflow=workflow, record_id=customer.record_id, follow_ups=[EMAIL, WEBHOOK])
    with Receiver(18551) as receiver:
        client.force_login(lead)
        html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
        assert receiver.received == []
    assert mail.outbox == []
    assert not FollowUp.objects.exists()
    panel = html.split('aria-label="Follow-ups"')[1].split("</section>")[0]
    assert "Email the customer" in panel and "<code>address-confirmed</code>" in panel
    # The workflow may not read the customer's email or name: the reviewer sees them masked, as it would.
    assert f'to the email of customer {customer.record_id}: <span class="recipient">m•••@example.com</span>' in panel
    assert "Subject: <strong>Your shipping address has been updated</strong>" in panel
    assert "Hello •••," in panel and "12 Harbour Road, Leith" in panel  # the address as it will be
    assert "maria@example.com" not in html and "Maria Lopez" not in panel
    assert "Call a webhook" in panel and '<code class="url">https://hooks.example.com/shipping</code>' in panel
    body = json.loads(html_unescape(panel.split('aria-label="JSON body">')[1].split("</pre>")[0]))
    assert body == {
        "event": "follow_up",
        "follow_up_id": None,
        "proposal_id": proposal.pk,
        "change_id": None,
        "workflow": "address-updates",
        "record_type": "customer",
        "record_id": customer.record_id,
        "payload": {"ticket": "T-881"},
    }
    assert html.index('aria-label="Follow-ups"') < html.index(">Approve</button>")


def test_a_recipient_the_workflow_may_read_is_shown_whole(client, workflow, lead):
    customer = CustomerFactory(full_name="Maria Lopez", email="maria@example.com")
    FieldPolicy.objects.create(workflow=workflow, record_type="customer", field="email", access="read")
    FieldPolicy.objects.create(workflow=workflow, record_type="customer", field="full_name", access="read")
    proposal = ProposalFactory(workflow=workflow, record_id=customer.record_id, follow_ups=[EMAIL])
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert '<span class="recipient">maria@example.com</span>' in html
    assert "Hello Maria Lopez," in html


def test_an_email_that_could_not_go_out_says_why_on_the_review_screen(client, workflow, lead):
    customer = CustomerFactory(email="")
    proposal = ProposalFactory(workflow=workflow, record_id=customer.record_id, follow_ups=[EMAIL])
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert f"It cannot be shown: customer {customer.record_id} has no email address." in html


def test_a_group_decision_shows_the_follow_ups_its_proposals_share_and_what_each_sends(client, workflow, lead):
    batch = BatchFactory(workflow=workflow, requested_by="agent")
    with_email = [ProposalFactory(workflow=workflow, batch=batch, follow_ups=[EMAIL]) for _ in range(2)]
    without = ProposalFactory(workflow=workflow, batch=batch)
    client.force_login(lead)
    html = client.get(reverse("review-batch", args=[batch.pk])).content.decode()
    assert "<td>Email the customer (address-confirmed)</td>" in html and "<td>none</td>" in html
    group_url = (
        reverse("review-group", args=[batch.pk])
        + "?action=update&fields=shipping_address&prompt_version=address-update%407"
        + "&follow_up=email_customer+address-confirmed"
    )
    assert group_url.replace("&", "&amp;") in html
    html = client.get(group_url).content.decode()
    assert "<strong>2 proposals</strong> in this group" in html
    assert "Once applied, each one also sends: <strong>Email the customer (address-confirmed)</strong>" in html
    assert html.count("Subject: <strong>Your shipping address has been updated</strong>") == 2
    assert without.record_id not in html
    response = client.post(
        group_url, {"decision": "approve", "confirmed": "2", **group_looked_at(batch, with_email, lead)}
    )
    assert response.status_code == 302
    assert set(Proposal.objects.filter(follow_ups=[EMAIL]).values_list("status", flat=True)) == {"approved"}
    assert Proposal.objects.get(pk=without.pk).status == ProposalStatus.PENDING
    assert mail.outbox == []


def test_a_webhook_body_holding_text_no_page_can_show_is_shown_escaped(client, workflow, lead):
    # What each database could hold from before the edge refused it: PostgreSQL never stored a lone surrogate.
    held = "\udfff" if connection.vendor == "sqlite" else "\u202e"
    stored = {
        "kind": "webhook",
        "params": {"url": "https://hooks.example.com/a", "payload": {"note": f"Müller {held}"}},
    }
    proposal = ProposalFactory(workflow=workflow, follow_ups=[stored])
    client.force_login(lead)
    response = client.get(reverse("review-detail", args=[proposal.pk]))
    assert response.status_code == 200
    assert f"&quot;note&quot;: &quot;Müller \\u{ord(held):04x}&quot;" in response.content.decode()
