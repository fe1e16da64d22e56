"""The banner on every page while a store does not answer: which store, since when, how much waits."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from approvals.models import ProposalStatus
from records.models import StoreOutage
from tests.helpers.factories import ProposalFactory, UserFactory
from tests.helpers.pages import text_of

WENT_DOWN = datetime(2026, 12, 2, 14, 2, 30, tzinfo=UTC)


@pytest.fixture
def signed_in(client, db):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(username="lead"))
    return client


def test_every_page_says_which_store_is_unreachable_since_when_and_how_many_changes_wait(signed_in):
    for _ in range(3):
        ProposalFactory(status=ProposalStatus.APPROVED)
    ProposalFactory(status=ProposalStatus.PENDING)
    StoreOutage.objects.create(record_type="customer", store="CRM", since=WENT_DOWN, reason="connection refused")
    for page in ("review-queue", "workflow-list", "blocked"):
        banner = text_of(signed_in.get(reverse(page)), "store-banner-customer")
        assert banner.startswith(
            "Store unreachable: The CRM store for customer has been unreachable since 14:02 — "
            "3 approved changes wait; nothing is written until it answers."
        ), banner


def test_one_waiting_change_reads_in_the_singular(signed_in):
    ProposalFactory(status=ProposalStatus.APPROVED)
    StoreOutage.objects.create(record_type="customer", store="CRM", since=WENT_DOWN, reason="connection refused")
    banner = text_of(signed_in.get(reverse("review-queue")), "store-banner-customer")
    assert "1 approved change waits; nothing is written until it answers." in banner


def test_no_banner_while_every_store_answers_nor_for_someone_signed_out(client, signed_in):
    assert "store-banner" not in signed_in.get(reverse("review-queue")).content.decode()
    StoreOutage.objects.create(record_type="customer", store="CRM", since=WENT_DOWN, reason="connection refused")
    client.logout()
    assert "store-banner" not in client.get(reverse("login")).content.decode()
