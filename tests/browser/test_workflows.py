"""The workflows page: the owner revokes a pipeline's service account, confirmed on a page naming it."""

import pytest

from tests.helpers.factories import CustomerFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, make_workflow

pytestmark = pytest.mark.browser


def test_the_owner_revokes_a_service_account_and_its_token_is_refused_at_once(page, login):
    owner = UserFactory(username="owner", password="owner")
    CustomerFactory(record_id="CUS-10432")
    pipeline = make_pipeline(make_workflow(owner=owner), name="nightly")
    assert pipeline.get("/api/v1/records/customer/CUS-10432").status_code == 200
    login("owner", "owner")
    page.goto("/workflows/")

    account = page.locator(".service-account").filter(has_text="nightly")
    assert "active, last used" in account.inner_text()
    account.get_by_role("link", name="Revoke nightly").click()
    main = page.get_by_role("main")
    assert "Revoke nightly of address-updates?" in main.inner_text()
    main.get_by_role("button", name="Revoke").click()

    assert "Service account address-updates/nightly revoked" in page.get_by_role("status").inner_text()
    assert "nightly · revoked" in page.locator(".service-account").inner_text()
    assert pipeline.get("/api/v1/records/customer/CUS-10432").status_code == 401
