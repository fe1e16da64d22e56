"""Powers come from named groups only: being staff or a superuser (what opens the admin) gives no right
to stop, release, undo, override or decide. The same person in the ops managers group may stop and undo."""

import pytest
import time_machine
from django.urls import reverse

from approvals.applying.services import Outcome, proposal_apply
from approvals.models import Override, ProposalStatus, StopScope, StopSwitch
from approvals.overrides.services import override_grant
from approvals.review.services import proposal_approve
from approvals.stops.services import stop_engage
from audit.services import Actor
from core.errors import NotAllowed
from records.models import Change, ChangeAction
from tests.helpers.factories import CustomerFactory, ProposalFactory
from tests.helpers.overrides import NIGHT, REASON, OnCall


@pytest.fixture
def admin(on_call: OnCall, client):  # type: ignore[no-untyped-def]
    """The workflow's owner, also staff and superuser: the admin opens for them, and nothing else does."""
    owner = on_call.owner
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    return owner


def _applied_change(on_call: OnCall) -> Change:
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    proposal = on_call.proposal(
        record_id=customer.record_id,
        changes={"shipping_address": "12 Harbour Road, Leith"},
        base={"shipping_address": "4 Old Mill Lane, Leith"},
    )
    assert proposal_apply(proposal_id=proposal.pk, worker="w/1").outcome == Outcome.APPLIED
    return Change.objects.get(proposal_id=proposal.pk)


def test_a_superuser_may_not_stop_or_release_until_they_join_the_ops_managers(client, on_call, admin):
    assert ">Stop</button>" not in client.get(reverse("workflow-list")).content.decode()
    assert client.get(reverse("stop-new")).status_code == 403
    refused = client.post(reverse("stop-new"), {"scope": "global", "reason": "it all looks wrong", "confirm": "on"})
    assert refused.status_code == 403
    assert not StopSwitch.objects.exists()

    switch = stop_engage(scope=StopScope.GLOBAL, reason="bad prompt rollout", actor=Actor.user(on_call.ops))
    page = client.get(reverse("stop-release", args=[switch.pk])).content.decode()
    assert ">Release</button>" not in page
    client.post(reverse("stop-release", args=[switch.pk]), {"note": "looks fine to me"})
    switch.refresh_from_db()
    assert switch.released_at is None

    admin.groups.add(on_call.ops_managers)
    client.post(reverse("stop-release", args=[switch.pk]), {"note": "checked with the on-call team"})
    switch.refresh_from_db()
    assert switch.released_at is not None
    assert client.get(reverse("stop-new")).status_code == 200


def test_a_superuser_may_not_undo_until_they_join_the_ops_managers(client, on_call, admin):
    change = _applied_change(on_call)
    html = client.get(reverse("change-undo", args=[change.id])).content.decode()
    assert ">Undo</button>" not in html and "You may not undo changes of address-updates" in html
    assert client.post(reverse("change-undo", args=[change.id]), {"field": ["shipping_address"]}).status_code == 403
    assert client.get(reverse("undo-bulk")).status_code == 403
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()

    admin.groups.add(on_call.ops_managers)
    assert client.post(reverse("change-undo", args=[change.id]), {"field": ["shipping_address"]}).status_code == 200
    assert Change.objects.filter(action=ChangeAction.REVERT, reverts=change).exists()


def test_a_superuser_may_not_override_or_decide(client, on_call, admin):
    waiting = ProposalFactory(workflow=on_call.workflow, requested_by="agent", requested_by_user=on_call.agent)
    with time_machine.travel(NIGHT, tick=False), pytest.raises(NotAllowed, match="you are not in that group"):
        override_grant(user=admin, block="stop_switch", scope="workflow", workflow=on_call.workflow, reason=REASON)
    assert not Override.objects.exists()

    with pytest.raises(NotAllowed, match="you may not review proposals of the workflow address-updates"):
        proposal_approve(proposal=waiting, reviewer=admin)
    assert client.post(reverse("review-approve", args=[waiting.pk]), {"revision": "1"}).status_code == 404
    waiting.refresh_from_db()
    assert waiting.status == ProposalStatus.PENDING
