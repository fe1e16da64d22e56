"""The five-step review page in a browser: its buttons work without JavaScript's help, and it reads at
1366x768 and on a 390 px phone without scrolling sideways."""

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from approvals.models import FieldPolicy, ReadinessReview
from records.store import RecordRef
from tests.helpers.factories import CustomerFactory, GroupFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.trail import apply_update

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


@pytest.fixture
def workflow(transactional_db):  # type: ignore[no-untyped-def]
    owner = UserFactory(username="owner", password="owner", first_name="Olive", last_name="Grant")
    workflow = WorkflowFactory(slug="address-updates", name="Address updates from support tickets", owner=owner)
    for field, access in (("email", "read"), ("shipping_address", "suggest"), ("priority", "write")):
        FieldPolicy.objects.create(workflow=workflow, record_type="customer", field=field, access=access)
    ops = UserFactory(username="ops", password="ops", first_name="Priya", last_name="Nair")
    ops.groups.add(GroupFactory(name=settings.COUNTERSIGN["OPS_MANAGER_GROUP"]))
    customer = CustomerFactory()
    proposal = ProposalFactory(workflow=workflow, record_id=customer.record_id, status="approved", decided_by=ops)
    apply_update(
        RecordRef("customer", customer.record_id),
        {"shipping_address": "Flat 14, The Old Granary, 145 Commercial Quay, Leith, Edinburgh EH6 6LX"},
        at=timezone.now(),
        proposal=proposal,
    )
    return workflow


def _assert_fits(page, width: int) -> None:  # type: ignore[no-untyped-def]
    scrolled = page.evaluate("() => document.documentElement.scrollWidth")
    assert scrolled <= width, f"the review page is {scrolled} px wide on a {width} px screen"


def test_a_review_is_started_ticked_and_marked_from_the_page(page, login, workflow):  # type: ignore[no-untyped-def]
    page.set_viewport_size(DESKTOP)
    login("owner", "owner")
    page.goto(f"/workflows/{workflow.slug}/review/")
    page.get_by_role("button", name="Start a review").click()
    expect(page.get_by_text("Review started.")).to_be_visible()
    page.get_by_role("button", name="Mark step 1 done").click()
    expect(page.get_by_text("Done by Olive Grant on")).to_be_visible()
    page.get_by_label("customer shipping address").select_option("read")
    page.get_by_role("button", name="Save marks").click()
    expect(page.get_by_text("differs from the file: file says suggest, review says read")).to_be_visible()
    page.get_by_label("Applied change to walk through").select_option(index=1)
    page.get_by_role("button", name="Choose change").click()
    page.get_by_role("button", name="Tick approval").click()
    expect(page.get_by_role("link", name="Trace the change")).to_be_visible()
    _assert_fits(page, DESKTOP["width"])
    steps = ReadinessReview.objects.get(workflow=workflow).steps
    assert set(steps) == {"tasks", "fields", "walk.approval"}


def test_the_review_page_fits_a_phone(page, login, workflow):  # type: ignore[no-untyped-def]
    page.set_viewport_size(PHONE)
    login("ops", "ops")
    page.goto(f"/workflows/{workflow.slug}/review/")
    page.get_by_role("button", name="Start a review").click()
    expect(
        page.get_by_role("heading", name="4. Walk one real record through approval, write, trace and rollback")
    ).to_be_visible()
    _assert_fits(page, PHONE["width"])
    tick = page.get_by_role("button", name="Tick approval")
    box = tick.bounding_box()
    assert box is not None and box["width"] >= 44 and box["height"] >= 44
