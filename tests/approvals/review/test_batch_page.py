"""A batch's page reads like the work: decided and written counted apart, asked again while writes
run, open to those who may override the batch, and reached from the queue's batch links."""

import pytest
from django.urls import reverse

from approvals.applying.services import proposals_apply
from approvals.models import Proposal, ProposalStatus
from tests.helpers.factories import UserFactory
from tests.helpers.overrides import on_call_workflow

HTMX = {"HX-Request": "true"}


@pytest.fixture
def on_call(db):  # type: ignore[no-untyped-def]
    return on_call_workflow()


@pytest.fixture
def sweep(on_call):  # type: ignore[no-untyped-def]
    """A batch of 10: 4 approved (2 of them written), 1 rejected, 5 pending."""
    batch = on_call.batch(name="Nightly sweep")
    approved = [on_call.proposal(batch=batch, status=ProposalStatus.APPROVED) for _ in range(4)]
    proposals_apply(proposal_ids=[p.pk for p in approved[:2]], worker="w/1")
    on_call.proposal(batch=batch, status=ProposalStatus.REJECTED)
    for _ in range(5):
        on_call.proposal(batch=batch, status=ProposalStatus.PENDING)
    return batch, approved


def test_the_batch_page_counts_approved_and_written_apart_and_polls_while_writes_remain(
    client, on_call, sweep, settings
):
    batch, _ = sweep
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "BATCH_POLL_SECONDS": 3}
    client.force_login(on_call.lead)
    html = client.get(reverse("review-batch", args=[batch.pk])).content.decode()
    assert (
        '<strong class="approved-count">4 approved</strong>, <strong class="written-count">2 written</strong>' in html
    )
    assert "2 still to write · 5 of 10 decided" in html
    assert 'hx-trigger="every 3s"' in html
    assert "Matched groups" in html


def test_the_poll_answers_with_the_progress_alone_and_stops_once_nothing_is_left_to_write(
    client, on_call, sweep, django_assert_max_num_queries
):
    batch, approved = sweep
    client.force_login(on_call.lead)
    proposals_apply(proposal_ids=[p.pk for p in approved[2:]], worker="w/1")
    with django_assert_max_num_queries(8):
        partial = client.get(reverse("review-batch", args=[batch.pk]), headers=HTMX).content.decode()
    assert partial.lstrip().startswith('<section id="batch-progress"')
    assert '4 approved</strong>, <strong class="written-count">4 written</strong>' in partial
    assert "hx-trigger" not in partial and "still to write" not in partial
    assert "Matched groups" not in partial and "<html" not in partial


def test_someone_who_may_override_the_batch_opens_its_page_without_its_groups(client, on_call, sweep):
    batch, _ = sweep
    client.force_login(on_call.ops)
    response = client.get(reverse("review-batch", args=[batch.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "4 approved" in html
    assert "Matched groups" not in html and "Open group" not in html
    assert "You may lift a block on this batch; its approver group (support-leads) decides its proposals." in html
    group = reverse("review-group", args=[batch.pk]) + "?action=update&fields=shipping_address&prompt_version=p"
    assert client.get(group).status_code == 404


def test_anyone_else_gets_404(client, on_call, sweep):
    batch, _ = sweep
    client.force_login(on_call.agent)
    assert client.get(reverse("review-batch", args=[batch.pk])).status_code == 404
    client.force_login(UserFactory(username="stranger"))
    assert client.get(reverse("review-batch", args=[batch.pk]), headers=HTMX).status_code == 404


def test_a_batch_link_in_the_queue_opens_the_batch_page(client, on_call, sweep):
    batch, _ = sweep
    client.force_login(on_call.lead)
    html = client.get(reverse("review-queue")).content.decode()
    assert f'<a href="{reverse("review-batch", args=[batch.pk])}">Nightly sweep</a>' in html


def test_the_proposal_screen_of_a_batch_keeps_its_decided_count(client, on_call, sweep):
    batch, _ = sweep
    pending = Proposal.objects.filter(batch=batch, status=ProposalStatus.PENDING)[0]
    client.force_login(on_call.lead)
    html = client.get(reverse("review-detail", args=[pending.pk])).content.decode()
    assert "5 of 10 decided" in html


def test_the_workflow_chips_count_what_the_filters_in_force_let_through(client, on_call, sweep):
    batch, _ = sweep
    on_call.proposal(status=ProposalStatus.PENDING)  # pending outside the batch
    client.force_login(on_call.lead)
    unfiltered = client.get(reverse("review-queue")).content.decode()
    assert 'data-count="all">6<' in unfiltered and 'data-count="address-updates">6<' in unfiltered
    assert "counted under the filters in force" not in unfiltered
    by_batch = client.get(reverse("review-queue"), {"batch": batch.pk}).content.decode()
    assert 'data-count="all">5<' in by_batch and 'data-count="address-updates">5<' in by_batch
    assert "counted under the filters in force" in by_batch
    by_action = client.get(reverse("review-queue"), {"action": "merge"}, headers=HTMX).content.decode()
    assert 'data-count="all">0<' in by_action and 'data-count="address-updates">0<' in by_action
    assert (
        '<option value="address-updates">' in client.get(reverse("review-queue"), {"action": "merge"}).content.decode()
    )
