import pytest

from approvals.jobs import apply_send_now
from approvals.models import Proposal, ProposalStatus, StopSwitch
from records.models import Change
from tests.helpers.approved import make_approved
from tests.helpers.factories import BatchFactory, GroupFactory, UserFactory
from tests.helpers.worker import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_an_ops_manager_stops_a_batch_from_the_page_and_release_finishes_it(page, login, start_worker):
    ops = UserFactory(username="ops", password="ops")
    ops.groups.add(GroupFactory(name="ops-managers"))
    batch = BatchFactory(expected_size=40)
    ids = make_approved(40, batch=batch)
    start_worker(concurrency=1)
    login("ops", "ops")

    writing = page.get_by_role("status").filter(has_text="Writing:")
    assert f"batch {batch.pk}" in writing.inner_text()
    assert "40 approved still to apply" in writing.inner_text()
    writing.get_by_role("button", name="Stop this batch").click()
    assert page.get_by_label("This batch").is_checked()
    assert page.get_by_label("Batch number").input_value() == str(batch.pk)
    page.get_by_label("Reason").fill("addresses look wrong")
    form = page.get_by_role("main")
    form.get_by_role("button", name="Stop").click()  # the browser holds the form until it is confirmed
    assert not StopSwitch.objects.exists()
    page.get_by_label("Yes: no write").check()
    form.get_by_role("button", name="Stop").click()

    banner = page.get_by_role("alert").filter(has_text="Stopped:")
    assert f"batch {batch.pk}" in banner.inner_text()
    assert "engaged by ops" in banner.inner_text()
    assert "addresses look wrong" in banner.inner_text()

    apply_send_now(ids)
    other = make_approved(1)
    apply_send_now(other)
    wait_until(lambda: Change.objects.filter(proposal_id__in=other).exists(), timeout=30, what="the other batch")
    assert not Change.objects.filter(proposal_id__in=ids).exists()
    assert Proposal.objects.filter(pk__in=ids, status=ProposalStatus.APPROVED).count() == 40

    banner.get_by_role("button", name="Release").click()
    assert page.get_by_text("40 approved proposals in this scope will be applied").is_visible()
    page.get_by_role("main").get_by_role("button", name="Release").click()
    assert page.get_by_role("alert").filter(has_text="Stopped:").count() == 0
    wait_until(lambda: Change.objects.filter(proposal_id__in=ids).count() == 40, timeout=60, what="the rest")
