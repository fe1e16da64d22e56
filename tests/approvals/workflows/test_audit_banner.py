"""Workflow owners and auditors see on every page that the audit chain was found broken."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from approvals.workflows.context_processors import audit_alarm
from audit.models import AuditEvent
from audit.services import Actor, audit_record, audit_verify_incremental
from tests.helpers.factories import UserFactory, WorkflowFactory
from tests.helpers.pages import text_of
from tests.helpers.seeing import make_auditor


@pytest.fixture
def broken_chain(db, audit_guard_bypassed) -> AuditEvent:  # type: ignore[no-untyped-def]
    edited = audit_record(action="workflow.changed", actor=Actor.system("test"))
    AuditEvent.objects.filter(pk=edited.pk).update(reason="rewritten")
    check = audit_verify_incremental()
    assert check.broken is not None
    return edited


@pytest.mark.parametrize("who", ["owner", "auditor"])
def test_owners_and_auditors_see_the_banner_on_every_page(client, broken_chain, who):
    user = WorkflowFactory().owner if who == "owner" else make_auditor(UserFactory(username="audrey"))
    client.force_login(user)
    for page in ("review-queue", "workflow-list", "blocked"):
        banner = text_of(client.get(reverse(page)), "audit-banner")
        assert banner.startswith(
            f"Audit chain broken: audit chain broken at event #{broken_chain.pk}: its content does not match its hash"
        ), banner
        assert "verify_audit --anchors" in banner


def test_a_reviewer_who_owns_nothing_sees_no_banner(client, broken_chain):
    client.force_login(UserFactory(username="lead"))
    assert 'id="audit-banner"' not in client.get(reverse("review-queue")).content.decode()


def test_a_sound_chain_shows_no_banner_and_costs_one_query(db, django_assert_num_queries):
    owner = WorkflowFactory().owner
    request = RequestFactory().get("/")
    request.user = owner
    with django_assert_num_queries(1):
        assert list(audit_alarm(request)["audit_alarm"]) == []
