"""The review screen offers Override to the group on duty for a proposal that waits on a block: an
approved one held by a stop switch or the canary cap (as it does for one waiting for the daytime
approvers, or in conflict), linking to the override form the Blocked page uses, its target filled in."""

import time_machine
from django.urls import reverse

from approvals.models import Override, OverrideBlock, ProposalStatus, Stage, StopScope
from approvals.stops.services import stop_engage
from audit.services import Actor
from records.models import Change
from tests.helpers.overrides import DAY, NIGHT, REASON
from tests.helpers.queued import Queued


def screen(client, user, proposal, at=NIGHT) -> str:  # type: ignore[no-untyped-def]
    client.force_login(user)
    with time_machine.travel(at, tick=False):
        response = client.get(reverse("review-detail", args=[proposal.pk]))
    assert response.status_code == 200
    return response.content.decode()


def override_link(block: str, proposal) -> str:  # type: ignore[no-untyped-def]
    back = reverse("review-detail", args=[proposal.pk])
    target = f"block={block}&amp;scope=proposal&amp;target={proposal.pk}&amp;next={back}"
    return f'<a class="button danger" href="{reverse("override-grant")}?{target}">Override</a>'


def held_by_a_batch_stop(on_call):  # type: ignore[no-untyped-def]
    batch = on_call.batch(name="address sweep")
    proposal = on_call.proposal(batch=batch)
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the sweep", actor=Actor.user(on_call.lead))
    return proposal


def test_at_night_ops_is_offered_an_override_of_an_approved_proposal_a_stop_holds(client, on_call):
    proposal = held_by_a_batch_stop(on_call)
    html = screen(client, on_call.ops, proposal)
    assert "Not written yet: stopped (batch" in html and "bad prompt in the sweep" in html
    assert "You are on override duty: an override lets this one proposal be written despite the stop switch." in html
    assert override_link(OverrideBlock.STOP_SWITCH, proposal) in html

    # The lead, off duty at night, sees what holds it and no Override.
    html = screen(client, on_call.lead, proposal)
    assert "bad prompt in the sweep" in html and ">Override</a>" not in html


def test_by_day_the_lead_on_duty_is_offered_it_and_ops_is_not(client, on_call):
    proposal = held_by_a_batch_stop(on_call)
    assert override_link(OverrideBlock.STOP_SWITCH, proposal) in screen(client, on_call.lead, proposal, at=DAY)
    html = screen(client, on_call.ops, proposal, at=DAY)
    assert "bad prompt in the sweep" in html and ">Override</a>" not in html


def test_the_link_opens_the_blocked_page_s_override_form_and_granting_it_lets_the_proposal_through(
    client, on_call, queued, django_capture_on_commit_callbacks
):
    proposal = held_by_a_batch_stop(on_call)
    client.force_login(on_call.ops)
    form = reverse("override-grant")
    ask = {"block": "stop_switch", "scope": "proposal", "target": proposal.pk, "next": f"/review/{proposal.pk}/"}
    with time_machine.travel(NIGHT, tick=False):
        html = client.get(form, ask).content.decode()
        assert f"Lift <strong>stop switch</strong> for proposal\n  {proposal.pk} (update customer" in html
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(form, {**ask, "reason": REASON, "minutes": "30"})
    assert (response.status_code, response["Location"]) == (302, f"/review/{proposal.pk}/")
    override = Override.objects.get()
    assert (override.block, override.scope, override.proposal_id) == ("stop_switch", "proposal", proposal.pk)
    assert Queued("approvals.apply_approved", [[proposal.pk]]) in queued
    with time_machine.travel(NIGHT, tick=False):
        html = client.get(f"/review/{proposal.pk}/").content.decode()
    assert "It will be written shortly" in html and ">Override</a>" not in html


def test_an_approved_proposal_over_the_canary_cap_offers_an_override_of_the_cap(client, on_call):
    on_call.workflow.stage, on_call.workflow.canary_daily_limit = Stage.CANARY, 1
    on_call.workflow.save()
    with time_machine.travel(NIGHT, tick=False):
        Change.objects.create(
            record_type="customer",
            record_id="CUS-1",
            action="update",
            before={"priority": "normal"},
            after={"priority": "high"},
            version_before=1,
            version_after=2,
            workflow_slug=on_call.workflow.slug,
            applied_by="worker",
        )
    proposal = on_call.proposal()
    html = screen(client, on_call.ops, proposal)
    assert "Not written yet: canary cap reached, resumes at 00:00 UTC" in html
    assert override_link(OverrideBlock.CANARY_CAP, proposal) in html


def test_the_global_stop_is_never_offered_for_an_override(client, on_call):
    proposal = on_call.proposal()
    stop_engage(scope=StopScope.GLOBAL, reason="incident", actor=Actor.user(on_call.lead))
    html = screen(client, on_call.ops, proposal)
    assert "The global stop is released, never overridden" in html and ">Override</a>" not in html


def test_a_decided_proposal_nothing_holds_is_not_opened_to_the_override_group(client, on_call):
    for status in (ProposalStatus.APPLIED, ProposalStatus.REJECTED):
        decided = on_call.proposal(status=status)
        client.force_login(on_call.ops)
        assert client.get(reverse("review-detail", args=[decided.pk])).status_code == 404
