"""A proposal in conflict goes back to a person. Someone on override duty may deliberately write the
proposed value over the current one: under a conflict override, confirmed, through the apply engine."""

import pytest
import time_machine
from django.urls import reverse

from approvals.applying.services import Outcome, proposal_apply
from approvals.models import Proposal, ProposalStatus, StopScope
from approvals.overrides.services import override_grant
from approvals.review.services import proposal_force_apply
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from core.errors import InvalidTransition, NotAllowed
from records.models import Change, Customer
from tests.helpers.factories import CustomerFactory, UserFactory
from tests.helpers.overrides import NIGHT, REASON, after_hours_now
from tests.helpers.queued import Queued
from tests.helpers.sight import looked_at
from tests.helpers.worker import wait_until

WORKER = "worker@test/1"


def in_conflict(on_call, **kwargs):
    """Approved against 4 Old Mill Lane; the record moved to 9 New Street before the worker came."""
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    proposal = on_call.proposal(record_id=customer.record_id, base_version=1, **kwargs)
    Customer.objects.filter(pk=customer.pk).update(shipping_address="9 New Street, Leith", version=2)
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.CONFLICT
    proposal.refresh_from_db()
    return proposal, customer


def grant(on_call, proposal, user=None):
    return override_grant(
        user=user or on_call.ops, block="conflict", scope="proposal", proposal=proposal, reason=REASON
    )


def test_under_a_conflict_override_the_proposed_value_is_written_over_the_current_one(
    on_call, django_capture_on_commit_callbacks, queued
):
    proposal, customer = in_conflict(on_call)
    with time_machine.travel(NIGHT, tick=False):
        override = grant(on_call, proposal)
        with django_capture_on_commit_callbacks(execute=True):
            forced = proposal_force_apply(proposal=proposal, user=on_call.ops, expected_version=2)
    assert forced.status == ProposalStatus.APPROVED
    assert (forced.base, forced.base_version) == ({"shipping_address": "9 New Street, Leith"}, 2)
    assert queued == [Queued("approvals.apply_approved", [[proposal.pk]])]
    event = AuditEvent.objects.get(action="proposal.forced")
    assert (event.actor_label, event.proposal_id, event.reason) == ("ops", proposal.pk, REASON)
    assert event.details["before"]["base"] == {"shipping_address": "4 Old Mill Lane, Leith"}
    assert event.details["override_id"] == override.pk
    used = AuditEvent.objects.get(action="override.used")
    assert used.details["what"] == "chose to write the proposed value over the current one"

    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.APPLIED
    customer.refresh_from_db()
    assert (customer.shipping_address, customer.version) == ("12 Harbour Road, Leith", 3)
    change = Change.objects.get(proposal_id=proposal.pk)
    assert change.before == {"shipping_address": "9 New Street, Leith"}  # kept, so Undo restores it
    assert change.after == {"shipping_address": "12 Harbour Road, Leith"}


def test_without_an_override_nobody_writes_over_a_conflict(on_call):
    proposal, customer = in_conflict(on_call)
    with time_machine.travel(NIGHT, tick=False), pytest.raises(NotAllowed, match="needs a conflict override"):
        proposal_force_apply(proposal=proposal, user=on_call.ops, expected_version=2)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.CONFLICT
    assert not AuditEvent.objects.filter(action="proposal.forced").exists()
    customer.refresh_from_db()
    assert (customer.shipping_address, customer.version) == ("9 New Street, Leith", 2)
    assert not Change.objects.filter(proposal_id=proposal.pk).exists()


def test_only_someone_on_duty_or_who_granted_it_uses_the_override(on_call):
    proposal, _ = in_conflict(on_call)
    with time_machine.travel(NIGHT, tick=False):
        grant(on_call, proposal)
        with pytest.raises(NotAllowed):
            proposal_force_apply(proposal=proposal, user=on_call.lead, expected_version=2)
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.CONFLICT


def test_the_person_who_asked_cannot_write_it_over_the_record(on_call):
    proposal, _ = in_conflict(on_call, requested_by="ops", requested_by_user=on_call.ops)
    second = UserFactory(username="kim")
    second.groups.add(on_call.ops_managers)
    with time_machine.travel(NIGHT, tick=False):
        grant(on_call, proposal, user=second)
        with pytest.raises(NotAllowed, match="You asked for this change"):
            proposal_force_apply(proposal=proposal, user=on_call.ops, expected_version=2)
    assert not AuditEvent.objects.filter(action__in=["override.used", "proposal.forced"]).exists()
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.CONFLICT


def test_if_the_record_changed_again_since_the_person_looked_nothing_happens(on_call):
    proposal, customer = in_conflict(on_call)
    Customer.objects.filter(pk=customer.pk).update(shipping_address="1 Later Road", version=3)
    with time_machine.travel(NIGHT, tick=False):
        grant(on_call, proposal)
        with pytest.raises(InvalidTransition, match="changed again since you looked"):
            proposal_force_apply(proposal=proposal, user=on_call.ops, expected_version=2)
    proposal.refresh_from_db()
    assert (proposal.status, proposal.base) == (ProposalStatus.CONFLICT, {"shipping_address": "4 Old Mill Lane, Leith"})
    assert not AuditEvent.objects.filter(action__in=["override.used", "proposal.forced"]).exists()


def test_the_forced_write_waits_for_a_stop_switch_like_any_other(on_call):
    batch = on_call.batch()
    proposal, customer = in_conflict(on_call, batch=batch)
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt", actor=Actor.user(on_call.lead))
    with time_machine.travel(NIGHT, tick=False):
        grant(on_call, proposal)
        proposal_force_apply(proposal=proposal, user=on_call.ops, expected_version=2)
        assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.STOPPED
    customer.refresh_from_db()
    assert customer.shipping_address == "9 New Street, Leith"


def test_the_confirmation_page_shows_the_three_values_and_needs_the_box_ticked(client, on_call):
    proposal, _ = in_conflict(on_call)
    client.force_login(on_call.ops)
    url = reverse("review-force-apply", args=[proposal.pk])
    with time_machine.travel(NIGHT, tick=False):
        html = client.get(url).content.decode()
        assert "4 Old Mill Lane, Leith" in html and "9 New Street, Leith" in html and "12 Harbour Road" in html
        assert "block=conflict&amp;scope=proposal" in html  # on duty: offered the override first
        grant(on_call, proposal)
        seen = looked_at(proposal, on_call.ops)
        unconfirmed = client.post(url, {"version": "2", **seen})
        confirmed = client.post(url, {"version": "2", "confirm": "yes", **seen})
    assert unconfirmed.status_code == 422
    assert "tick the box to confirm" in unconfirmed.content.decode()
    assert (confirmed.status_code, confirmed["Location"]) == (302, reverse("trace-proposal", args=[proposal.pk]))
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPROVED


def test_the_blocked_page_links_a_conflict_to_its_confirmation_page(client, on_call):
    proposal, _ = in_conflict(on_call)
    client.force_login(on_call.ops)
    url = reverse("review-force-apply", args=[proposal.pk])
    with time_machine.travel(NIGHT, tick=False):
        grant(on_call, proposal)
        html = client.get(reverse("blocked")).content.decode()
    assert f'<a href="{url}">Write the proposed value…</a>' in html


@pytest.mark.worker
def test_a_worker_writes_the_forced_proposal(start_worker):
    start_worker(concurrency=1)
    on_call = after_hours_now()
    proposal, customer = in_conflict(on_call)
    grant(on_call, proposal)
    proposal_force_apply(proposal=proposal, user=on_call.ops, expected_version=2)
    wait_until(lambda: Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPLIED, timeout=30)
    customer.refresh_from_db()
    assert customer.shipping_address == "12 Harbour Road, Leith"
    assert Change.objects.get(proposal_id=proposal.pk).before == {"shipping_address": "9 New Street, Leith"}
