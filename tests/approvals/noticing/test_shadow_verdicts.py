"""In shadow, reviewers say on the review screen whether they would approve or reject a proposal; the
quality page shows how often they agree with each prompt version."""

import re

import pytest
from django.urls import reverse

from approvals.models import ShadowVerdict
from approvals.review.shadow import shadow_verdict_give
from audit.models import AuditEvent
from core.errors import InvalidTransition, NotAllowed, ValidationFailed
from tests.helpers.factories import ProposalFactory, UserFactory
from tests.helpers.seeing import let_see


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'").strip()


@pytest.fixture
def shadowed(workflow):  # type: ignore[no-untyped-def]
    return ProposalFactory(workflow=workflow, status="shadowed", prompt_version="address-update@8")


def test_a_reviewer_marks_a_shadowed_proposal_on_its_review_screen(client, lead, shadowed):  # type: ignore[no-untyped-def]
    client.force_login(lead)
    url = reverse("review-detail", args=[shadowed.pk])
    page = _text(client.get(url).content.decode())
    assert "Would approve" in page and "Would reject" in page

    response = client.post(
        reverse("review-shadow-verdict", args=[shadowed.pk]),
        {"verdict": "would_reject", "reason": "The ticket asks for billing, not shipping"},
    )

    assert response.status_code == 302 and response["Location"] == url
    verdict = ShadowVerdict.objects.get(proposal=shadowed)
    assert (verdict.user, verdict.verdict, verdict.reason) == (
        lead,
        "would_reject",
        "The ticket asks for billing, not shipping",
    )
    event = AuditEvent.objects.get(action="proposal.shadow_verdict")
    assert (event.proposal_id, event.new_value, event.old_value) == (shadowed.pk, "would_reject", None)
    assert event.reason == "The ticket asks for billing, not shipping"
    assert event.prompt_version == "address-update@8" and event.actor_label == "lead"
    page = _text(client.get(url).content.decode())
    assert "You said: would reject (“The ticket asks for billing, not shipping”)" in page
    assert "0 would approve · 1 would reject" in page
    assert "Next shadowed proposal to judge" not in page  # the only one
    shadowed.refresh_from_db()
    assert shadowed.status == "shadowed"  # nothing is decided or written in shadow
    trail = _text(client.get(reverse("trail")).content.decode())
    assert "proposal.shadow_verdict" in trail and "The ticket asks for billing, not shipping" in trail


def test_a_second_word_from_the_same_person_replaces_the_first(lead, shadowed):  # type: ignore[no-untyped-def]
    shadow_verdict_give(proposal_id=shadowed.pk, user=lead, verdict="would_reject", reason="no")
    shadow_verdict_give(proposal_id=shadowed.pk, user=lead, verdict="would_approve", reason="ignored")

    verdict = ShadowVerdict.objects.get(proposal=shadowed)
    assert (verdict.verdict, verdict.reason) == ("would_approve", "")
    latest = AuditEvent.objects.filter(action="proposal.shadow_verdict").order_by("-id").first()
    assert latest is not None and (latest.old_value, latest.new_value) == ("would_reject", "would_approve")


def test_a_proposal_not_in_shadow_refuses_a_verdict(client, lead, workflow):  # type: ignore[no-untyped-def]
    pending = ProposalFactory(workflow=workflow)
    with pytest.raises(InvalidTransition, match="not shadowed"):
        shadow_verdict_give(proposal_id=pending.pk, user=lead, verdict="would_approve")
    client.force_login(lead)

    response = client.post(reverse("review-shadow-verdict", args=[pending.pk]), {"verdict": "would_approve"})

    assert response.status_code == 409
    assert "is pending, not shadowed: only a proposal of a workflow in shadow takes" in _text(response.content.decode())
    assert not ShadowVerdict.objects.exists()
    assert not AuditEvent.objects.filter(action="proposal.shadow_verdict").exists()


def test_only_its_reviewers_may_give_one_and_never_the_person_who_asked(client, workflow, leads_group, shadowed):  # type: ignore[no-untyped-def]
    asker = UserFactory(username="agent")  # the factory's proposals are asked for by "agent"
    asker.groups.add(leads_group)
    with pytest.raises(NotAllowed, match="You asked for this change"):
        shadow_verdict_give(proposal_id=shadowed.pk, user=asker, verdict="would_approve")
    viewer = let_see(UserFactory(username="viewer"), workflow)
    with pytest.raises(NotAllowed, match="You do not review the workflow address-updates, so you cannot give"):
        shadow_verdict_give(proposal_id=shadowed.pk, user=viewer, verdict="would_approve")
    client.force_login(asker)
    page = _text(client.get(reverse("review-detail", args=[shadowed.pk])).content.decode())
    assert "You asked for this change, so you cannot say whether you would approve or reject it." in page
    assert not ShadowVerdict.objects.exists()


def test_a_verdict_must_be_one_of_the_two(client, lead, shadowed):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as refused:
        shadow_verdict_give(proposal_id=shadowed.pk, user=lead, verdict="maybe")
    assert refused.value.errors[0]["field"] == "verdict"
    client.force_login(lead)
    response = client.post(reverse("review-shadow-verdict", args=[shadowed.pk]), {"verdict": "maybe"})
    assert response.status_code == 422 and "choose “would approve” or “would reject”" in response.content.decode()


def test_the_quality_page_shows_the_agreement_per_prompt_version(client, workflow, lead, second_lead):  # type: ignore[no-untyped-def]
    people = [lead, second_lead, UserFactory(username="third"), UserFactory(username="fourth")]
    for person in people[2:]:
        person.groups.add(workflow.approver_group)
    first = ProposalFactory(workflow=workflow, status="shadowed", prompt_version="v8")
    second = ProposalFactory(workflow=workflow, status="shadowed", prompt_version="v8")
    for person, verdict in zip(
        people, ["would_approve", "would_approve", "would_reject", "would_approve"], strict=True
    ):
        shadow_verdict_give(proposal_id=first.pk, user=person, verdict=verdict)
    shadow_verdict_give(proposal_id=second.pk, user=lead, verdict="would_approve")
    unjudged = ProposalFactory(workflow=workflow, status="shadowed", prompt_version="v8")
    client.force_login(lead)

    html = client.get(reverse("workflow-quality", args=[workflow.slug])).content.decode()
    page = _text(html)

    assert "Prompt version v8" in page
    assert "Agreement in shadow 80.0% of 5 verdicts" in page
    assert "the share that said they would approve it" in page
    assert "1 shadowed proposal of this workflow waits for your verdict. Judge the oldest" in page
    assert f'href="{reverse("review-detail", args=[unjudged.pk])}"' in html
    client.force_login(let_see(UserFactory(username="viewer"), workflow))  # sees it, does not review it
    assert "for your verdict" not in client.get(reverse("workflow-quality", args=[workflow.slug])).content.decode()


def test_the_review_screen_leads_to_the_next_shadowed_proposal_to_judge(client, workflow, lead, shadowed):  # type: ignore[no-untyped-def]
    judged = ProposalFactory(workflow=workflow, status="shadowed")
    shadow_verdict_give(proposal_id=judged.pk, user=lead, verdict="would_approve")
    waiting = ProposalFactory(workflow=workflow, status="shadowed")
    client.force_login(lead)

    html = client.get(reverse("review-detail", args=[shadowed.pk])).content.decode()

    assert f'<a href="{reverse("review-detail", args=[waiting.pk])}">Next shadowed proposal to judge</a>' in html
