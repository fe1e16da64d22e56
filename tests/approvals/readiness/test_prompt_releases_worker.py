"""The prompt-version cap with a real worker: what the cap holds waits, the sweeper leaves it, and
the owner's promotion sends it on."""

import time

import pytest

from approvals.applying.selectors import proposal_apply_wait_reason
from approvals.jobs import apply_send_now
from approvals.models import Proposal, ProposalStatus
from approvals.readiness.prompts import prompt_version_promote
from records.models import Change
from tests.helpers.factories import UserFactory
from tests.helpers.pipeline import make_pipeline, make_workflow
from tests.helpers.releases import HELD, approve, submit
from tests.helpers.worker import wait_until

pytestmark = pytest.mark.worker


def test_a_new_version_waits_at_its_cap_until_the_owner_promotes_it(start_worker):
    start_worker(concurrency=2, beat=True)
    owner = UserFactory(username="owner")
    pipeline = make_pipeline(make_workflow(slug="address-updates", owner=owner, canary_daily_limit=2))
    ids = approve(submit(pipeline, 5))
    apply_send_now(ids)
    wait_until(lambda: Change.objects.filter(proposal_id__in=ids).count() == 2, timeout=30)
    time.sleep(3)  # the sweeper runs every second here and queues nothing the cap holds
    assert Change.objects.filter(prompt_version="address-update@8").count() == 2
    waiting = Proposal.objects.filter(pk__in=ids, status=ProposalStatus.APPROVED).select_related("workflow")
    assert waiting.count() == 3
    assert {proposal_apply_wait_reason(proposal=p) for p in waiting} == {HELD}

    prompt_version_promote(workflow=pipeline.workflow, prompt_version="address-update@8", user=owner)
    wait_until(lambda: Change.objects.filter(proposal_id__in=ids).count() == 5, timeout=30)
    assert set(Proposal.objects.filter(pk__in=ids).values_list("status", flat=True)) == {ProposalStatus.APPLIED}
