"""The bulk undo page reads like the work: the dry run's result and the Undo button first, long lists
folded away below, and recent batches offered to pick rather than a number to type."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from guardian.shortcuts import assign_perm

from approvals.models import FollowUp, FollowUpStatus
from records.services.changes import change_update
from records.store import RecordRef
from tests.approvals.undo.test_views import PERSON, applied_batch
from tests.helpers.factories import UserFactory


@pytest.fixture
def ops(db, client):  # type: ignore[no-untyped-def]
    user = UserFactory(username="ops")
    user.groups.add(Group.objects.get_or_create(name="ops-managers")[0])
    client.force_login(user)
    return user


def _dry_run(client, batch):  # type: ignore[no-untyped-def]
    return client.get(reverse("undo-bulk"), {"scope": "batch", "batch": batch.pk}).content.decode()


def test_the_dry_run_says_how_many_and_offers_undo_before_any_list(client, ops):
    batch, proposals = applied_batch(3, conflict_at=1)
    html = _dry_run(client, batch)
    dry_run = html[html.index('aria-label="Dry run"') :]
    result = dry_run.index("3</strong> changes to undo, newest first")
    conflicts = dry_run.index("1</strong> conflict: the record changed since")
    button = dry_run.index(">Undo</button>")
    table = dry_run.index('<table class="undo-conflicts">')
    assert result < conflicts < button < table
    assert html.index('aria-label="Dry run"') < html.index('aria-label="What to undo"')
    assert '<details class="undo-list" open>' in dry_run  # one conflict: nothing to fold


def test_long_lists_start_folded(client, ops):
    batch, proposals = applied_batch(7)
    for proposal in proposals:
        change_update(
            ref=RecordRef("customer", proposal.record_id), values={"shipping_address": "typed"}, origin=PERSON
        )
    FollowUp.objects.update(status=FollowUpStatus.SENT)
    dry_run = _dry_run(client, batch)
    assert "<summary>Conflicts (7): left as they are</summary>" in dry_run
    assert "<summary>Sent — cannot be retracted (7)</summary>" in dry_run
    assert dry_run.count('<details class="undo-list">') == 2 and 'undo-list" open' not in dry_run


def test_the_form_offers_recent_batches_newest_first_and_a_number_still_works(client, ops):
    older, _ = applied_batch(2)
    newer, _ = applied_batch(3)
    html = client.get(reverse("undo-bulk")).content.decode()
    assert "Recent batches you may undo" in html
    newer_link = f'<a href="{reverse("undo-bulk")}?batch={newer.pk}">Batch {newer.pk}: address sweep</a>'
    older_link = f'<a href="{reverse("undo-bulk")}?batch={older.pk}">Batch {older.pk}: address sweep</a>'
    assert html.index(newer_link) < html.index(older_link)
    assert "3 changes written" in html and "2 changes written" in html
    picked = client.get(f"{reverse('undo-bulk')}?batch={newer.pk}").content.decode()
    assert f"Dry run: batch {newer.pk} (address sweep)" in picked
    typed = client.get(reverse("undo-bulk"), {"scope": "batch", "batch": str(older.pk)}).content.decode()
    assert f"Dry run: batch {older.pk} (address sweep)" in typed


def test_only_batches_the_person_may_undo_are_offered(client, db):
    mine, _ = applied_batch(1)
    other, _ = applied_batch(1)
    leads = Group.objects.create(name="support-leads")
    assign_perm("approvals.rollback_workflow", leads, mine.workflow)
    assign_perm("approvals.view_workflow", leads, mine.workflow)
    lead = UserFactory(username="lead")
    lead.groups.add(leads)
    client.force_login(lead)
    html = client.get(reverse("undo-bulk")).content.decode()
    assert f"?batch={mine.pk}" in html and f"?batch={other.pk}" not in html
