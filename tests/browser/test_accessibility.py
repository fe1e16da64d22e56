"""axe-core on the pages people work from, in the demo's data: no serious or critical violation.

axe is vendored in tests/browser/vendor (see its README): nothing is fetched when the tests run.
"""

from collections.abc import Callable
from datetime import UTC, timedelta

import pytest
from playwright.sync_api import expect

from approvals.demo.seed import DemoSeeded
from approvals.models import Proposal
from records.models import Change, Customer
from tests.helpers.axe import assert_no_serious_violations, axe_violations
from tests.helpers.demo import demo_after_hours, first_pending
from tests.helpers.sight import settled

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def demo(transactional_db, queued) -> DemoSeeded:  # type: ignore[no-untyped-def]
    """After hours for address-updates, so that Blocked shows ops an Override button."""
    return demo_after_hours()


def _bad_batch_change(demo: DemoSeeded, *, hand_corrected: bool) -> Change:
    """A change of the demo's bad batch; one whose record an agent corrected by phone since, if asked."""
    changes = Change.objects.filter(batch_id=demo.bad_batch.pk).order_by("applied_at")
    corrected = set(
        Customer.objects.filter(
            record_id__in=changes.values("record_id"), shipping_address__endswith="(checked by phone)"
        ).values_list("record_id", flat=True)
    )
    return next(change for change in changes if (change.record_id in corrected) == hand_corrected)


def _review_of_an_update(demo: DemoSeeded) -> str:
    return f"/review/{first_pending(workflow__slug='address-updates', action='update', batch=None).pk}/"


def _review_of_a_merge(demo: DemoSeeded) -> str:
    return f"/review/{first_pending(action='merge').pk}/"


def _trace_of_a_change(demo: DemoSeeded) -> str:
    return f"/trace/change/{_bad_batch_change(demo, hand_corrected=False).id}/"


def _timeline_at_a_moment(demo: DemoSeeded) -> str:
    change = _bad_batch_change(demo, hand_corrected=True)
    moment = (change.applied_at + timedelta(seconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"/records/customer/{change.record_id}/?at={moment}"


def _bulk_undo_dry_run(demo: DemoSeeded) -> str:
    return f"/undo/?scope=batch&batch={demo.bad_batch.pk}"


def _undo_of_a_change_in_conflict(demo: DemoSeeded) -> str:
    return f"/changes/{_bad_batch_change(demo, hand_corrected=True).id}/undo/"


def _override_form(demo: DemoSeeded) -> str:
    held = Proposal.objects.filter(batch__name="Weekend address sweep").values_list("batch_id", flat=True).first()
    return f"/blocked/override/?block=stop_switch&scope=batch&target={held}"


def _page(path: str) -> Callable[[DemoSeeded], str]:
    return lambda demo: path


def _opened(page, path: str) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(path)
    assert response is not None and response.status == 200, f"{path} answered {response and response.status}"
    expect(page.get_by_role("heading", level=1)).to_be_visible()


@pytest.mark.parametrize(
    ("username", "url_of"),
    [
        pytest.param("lead", _page("/review/"), id="review-queue"),
        pytest.param("lead", _review_of_an_update, id="review-screen-update"),
        pytest.param("lead", _review_of_a_merge, id="review-screen-merge"),
        pytest.param("ops", _page("/blocked/"), id="blocked"),
        pytest.param("ops", _trace_of_a_change, id="trace"),
        pytest.param("ops", _timeline_at_a_moment, id="record-timeline"),
        pytest.param("ops", _bulk_undo_dry_run, id="undo-bulk-dry-run"),
        pytest.param("ops", _undo_of_a_change_in_conflict, id="undo-one-change"),
        pytest.param("owner", _page("/workflows/refund-notes/readiness/"), id="readiness"),
    ],
)
def test_no_serious_or_critical_violation_on_a_desktop(page, login, demo, username, url_of):
    login(username, username)
    _opened(page, url_of(demo))
    assert_no_serious_violations(page)


@pytest.mark.parametrize(
    ("username", "url_of"),
    [
        pytest.param("lead", _review_of_an_update, id="review-screen"),
        pytest.param("ops", _page("/blocked/"), id="blocked"),
        pytest.param("ops", _override_form, id="override-form"),
        pytest.param("ops", _page("/trail/"), id="trail"),
        pytest.param("ops", _page("/overrides/review/"), id="morning-review"),
        pytest.param("owner", _page("/workflows/refund-notes/readiness/"), id="readiness"),
    ],
)
def test_no_serious_or_critical_violation_on_a_phone(page, login, demo, username, url_of):
    page.set_viewport_size(PHONE)
    login(username, username)
    _opened(page, url_of(demo))
    assert_no_serious_violations(page)


def test_the_keys_help_and_the_next_proposal_swapped_in_after_a_decision_pass_too(page, login, demo):
    login("lead", "lead")
    page.goto(_review_of_an_update(demo))
    page.keyboard.press("?")
    expect(page.locator("#review-help")).to_be_visible()
    assert_no_serious_violations(page)
    page.keyboard.press("Escape")
    settled(page)  # a decision is taken only on a proposal that has been on screen a moment
    page.get_by_label("Reason for rejecting").fill("The ticket is about another customer")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_role("status").filter(has_text="Rejected the update")).to_be_visible()
    assert_no_serious_violations(page)


def test_the_check_fails_on_a_serious_violation_and_names_it(chromium):
    page = chromium.new_page()
    try:
        page.set_content(
            '<html lang="en"><title>t</title><main><h1>t</h1><img src="x.png"><button></button></main></html>'
        )
        found = {violation["id"]: violation["impact"] for violation in axe_violations(page)}
        assert found == {"image-alt": "critical", "button-name": "critical"}
        with pytest.raises(AssertionError, match=r"\[critical\] image-alt: .*\n    at img"):
            assert_no_serious_violations(page)
    finally:
        page.close()
