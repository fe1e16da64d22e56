"""No approval without sight, on the server: a decision carries the token of the page that showed the
proposal, and is refused when that page did not show it to this person, as it is now, long enough."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
import time_machine
from django.core import signing
from django.urls import reverse

from approvals.models import Proposal, ProposalStatus
from approvals.review.services import proposal_approve, proposal_force_apply
from approvals.review.sight import SETTLE, Unseen, group_shown, proposal_shown, sight_token, unseen
from audit.models import AuditEvent
from core.errors import InvalidTransition
from tests.helpers.factories import BatchFactory, ProposalFactory
from tests.helpers.queued import Queued
from tests.helpers.seeing import let_see
from tests.helpers.sight import looked_at

HTMX = {"HTTP_HX_REQUEST": "true"}
MORNING = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
TOO_SOON = "had been on your screen for less than 0.5 seconds, so nothing was decided"


def shown_on(html: str) -> dict[str, str]:
    """The revision and token the page's approve form posts, as a browser would send them."""
    form = re.search(r'<form class="approve".*?</form>', html, re.S)
    assert form is not None, "the page offers no approve form"
    fields = dict(re.findall(r'<input type="hidden" name="(revision|shown)" value="([^"]*)"', form.group(0)))
    return {name: unescape(value) for name, value in fields.items()}


def refusals() -> list[tuple[str, str]]:
    return [
        (event.details["refusal"], event.details.get("sight", ""))
        for event in AuditEvent.objects.filter(action="proposal.decision_refused").order_by("id")
    ]


# The rule


def test_a_token_holds_only_for_what_its_page_showed_to_whom_once_the_settle_time_has_passed(workflow, lead, agent):
    proposal = ProposalFactory(workflow=workflow)
    shown = proposal_shown(proposal)
    token = sight_token(shown=shown, user=lead, at=MORNING)
    later = MORNING + SETTLE

    assert unseen(token=token, shown=shown, user=lead, now=later) is None
    assert unseen(token=token, shown=shown, user=lead, now=later - timedelta(milliseconds=1)) == Unseen.TOO_SOON
    assert unseen(token=token, shown=shown, user=lead, now=MORNING - timedelta(seconds=1)) == Unseen.TOO_SOON
    assert unseen(token="", shown=shown, user=lead, now=later) == Unseen.MISSING
    assert unseen(token=token[:-2] + "xx", shown=shown, user=lead, now=later) == Unseen.FORGED
    unsigned = signing.dumps({"shown": shown, "user": lead.pk, "at": 0}, salt="another purpose")
    assert unseen(token=unsigned, shown=shown, user=lead, now=later) == Unseen.FORGED
    assert unseen(token=token, shown=shown, user=agent, now=later) == Unseen.ELSEWHERE
    proposal.revision += 1
    assert unseen(token=token, shown=proposal_shown(proposal), user=lead, now=later) == Unseen.ELSEWHERE
    other = ProposalFactory(workflow=workflow)
    assert unseen(token=token, shown=proposal_shown(other), user=lead, now=later) == Unseen.ELSEWHERE


def test_a_group_token_names_exactly_the_proposals_its_page_showed(workflow, lead):
    token = sight_token(shown=group_shown(batch_id=7, ids=[3, 1, 2]), user=lead, at=MORNING)
    later = MORNING + SETTLE
    assert unseen(token=token, shown=group_shown(batch_id=7, ids=[1, 2, 3]), user=lead, now=later) is None
    assert unseen(token=token, shown=group_shown(batch_id=7, ids=[1, 2]), user=lead, now=later) == Unseen.ELSEWHERE
    assert unseen(token=token, shown=group_shown(batch_id=8, ids=[1, 2, 3]), user=lead, now=later) == Unseen.ELSEWHERE


# The review screen


def test_a_decision_sooner_than_the_settle_time_after_its_page_was_drawn_decides_nothing(
    client, workflow, lead, queued, django_capture_on_commit_callbacks
):
    proposal = ProposalFactory(workflow=workflow)
    client.force_login(lead)
    url = reverse("review-approve", args=[proposal.pk])
    with time_machine.travel(MORNING, tick=False) as clock:
        seen = shown_on(client.get(reverse("review-detail", args=[proposal.pk])).content.decode())
        clock.shift(timedelta(milliseconds=150))
        response = client.post(url, seen, **HTMX)
    assert response.status_code == 409
    html = response.content.decode()
    assert html.lstrip().startswith('<article class="proposal"')
    assert f"Look first: proposal {proposal.pk} {TOO_SOON}" in html
    assert "HX-Trigger" not in response
    proposal.refresh_from_db()
    assert (proposal.status, proposal.revision) == (ProposalStatus.PENDING, 1)
    assert refusals() == [("unseen", "too_soon")]
    assert queued == []

    # The refused answer drew the proposal again: its own token holds once the person has looked.
    again = shown_on(html)
    with (
        time_machine.travel(MORNING + timedelta(seconds=2), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert client.post(url, again, **HTMX).status_code == 200
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPROVED
    assert queued == [Queued("approvals.apply_approved", [[proposal.pk]])]


def test_without_javascript_the_form_carries_the_token_and_half_a_second_of_reading_is_enough(client, workflow, lead):
    proposal = ProposalFactory(workflow=workflow)
    client.force_login(lead)
    with time_machine.travel(MORNING, tick=False) as clock:
        seen = shown_on(client.get(reverse("review-detail", args=[proposal.pk])).content.decode())
        clock.shift(SETTLE)
        response = client.post(reverse("review-reject", args=[proposal.pk]), {**seen, "reason": "wrong customer"})
    assert (response.status_code, response["Location"]) == (302, reverse("review-queue"))
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decision_note) == (ProposalStatus.REJECTED, "wrong customer")
    assert refusals() == []


@pytest.mark.parametrize(
    ("tampered", "sight"),
    [
        (lambda seen, other: {"revision": seen["revision"]}, "missing"),
        (lambda seen, other: {**seen, "shown": seen["shown"][:-4] + "abcd"}, "forged"),
        (lambda seen, other: {**seen, "shown": other["shown"]}, "elsewhere"),
    ],
    ids=["missing", "forged", "for-another-proposal"],
)
def test_a_decision_without_the_token_of_a_page_that_showed_this_proposal_is_refused_plainly(
    client, workflow, lead, tampered, sight
):
    proposal, other = ProposalFactory(workflow=workflow), ProposalFactory(workflow=workflow)
    client.force_login(lead)
    with time_machine.travel(MORNING, tick=False) as clock:
        seen = shown_on(client.get(reverse("review-detail", args=[proposal.pk])).content.decode())
        other_seen = shown_on(client.get(reverse("review-detail", args=[other.pk])).content.decode())
        clock.shift(timedelta(seconds=5))
        response = client.post(reverse("review-approve", args=[proposal.pk]), tampered(seen, other_seen))
    assert response.status_code == 409
    html = response.content.decode()
    assert "<html" in html  # without htmx the whole page comes back, with the message
    assert "nothing was decided: the" in html and f"proposal {proposal.pk}" in html
    assert set(Proposal.objects.values_list("status", flat=True)) == {ProposalStatus.PENDING}
    assert refusals() == [("unseen", sight)]


def test_a_page_shown_to_one_lead_does_not_carry_another_s_decision(client, workflow, lead, second_lead):
    proposal = ProposalFactory(workflow=workflow)
    client.force_login(lead)
    with time_machine.travel(MORNING, tick=False) as clock:
        seen = shown_on(client.get(reverse("review-detail", args=[proposal.pk])).content.decode())
        clock.shift(timedelta(seconds=5))
        client.force_login(second_lead)
        response = client.post(reverse("review-approve", args=[proposal.pk]), seen, **HTMX)
    assert response.status_code == 409
    assert f"did not show you proposal {proposal.pk} as it is now" in response.content.decode()
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.PENDING
    assert refusals() == [("unseen", "elsewhere")]


def test_a_decided_or_undecidable_proposal_gives_its_own_reason_before_the_sight_check(client, workflow, agent):
    proposal = ProposalFactory(workflow=workflow, requested_by="agent")
    client.force_login(let_see(agent, workflow))  # a requester looks only where they may see
    response = client.post(reverse("review-approve", args=[proposal.pk]), {"revision": "1"})
    assert response.status_code == 403
    assert refusals() == [("requester", "")]


# Group decisions and writing over a conflict


def test_a_group_decided_sooner_than_the_settle_time_after_its_page_was_drawn_is_refused(
    client, workflow, lead, queued
):
    batch = BatchFactory(workflow=workflow)
    proposals = [ProposalFactory(workflow=workflow, batch=batch) for _ in range(3)]
    client.force_login(lead)
    url = (
        reverse("review-group", args=[batch.pk])
        + "?action=update&fields=shipping_address&prompt_version=address-update%407"
    )
    with time_machine.travel(MORNING, tick=False) as clock:
        html = client.get(url).content.decode()
        token = unescape(re.search(r'name="shown" value="([^"]*)"', html).group(1))  # type: ignore[union-attr]
        ids = ",".join(str(p.pk) for p in proposals)
        clock.shift(timedelta(milliseconds=200))
        response = client.post(url, {"decision": "approve", "ids": ids, "shown": token, "confirmed": "3"})
    assert response.status_code == 409
    assert f"Look first: this group {TOO_SOON}" in response.content.decode()
    assert set(Proposal.objects.values_list("status", flat=True)) == {ProposalStatus.PENDING}
    refused = AuditEvent.objects.get(action="proposal.decision_refused")
    assert (refused.batch_id, refused.details["refusal"], refused.details["sight"]) == (batch.pk, "unseen", "too_soon")
    assert queued == []


def test_writing_over_a_conflict_needs_the_token_of_the_page_that_showed_it(on_call):
    proposal = on_call.proposal(status=ProposalStatus.CONFLICT)
    with pytest.raises(InvalidTransition, match=f"did not come from a page that showed you proposal {proposal.pk}"):
        proposal_force_apply(proposal=proposal, user=on_call.ops, expected_version=1, shown_token="")
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.CONFLICT
    refused = AuditEvent.objects.get(action="proposal.decision_refused")
    assert (refused.details["attempted"], refused.details["sight"]) == ("force", "missing")


def test_a_decision_no_page_was_involved_in_is_not_asked_for_a_token(workflow, lead):
    proposal = ProposalFactory(workflow=workflow)
    assert proposal_approve(proposal=proposal, reviewer=lead).approved
    shown = ProposalFactory(workflow=workflow)
    assert proposal_approve(proposal=shown, reviewer=lead, shown_token=looked_at(shown, lead)["shown"]).approved
