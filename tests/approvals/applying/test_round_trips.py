"""What the apply path sends to PostgreSQL for each write: it is the product's hot path, and the
record store's statements travel with the proposal's and the trail's instead of on their own."""

import pytest
from django.db import connection
from django.utils import timezone

from approvals.applying.services import Outcome, proposals_apply
from approvals.models import ProposalStatus
from tests.helpers.factories import CustomerFactory, ProposalFactory, UserFactory, WorkflowFactory

CHUNK_READS = 3  # the chunk's proposals, the workflows' policies, the workflows


@pytest.mark.postgres
def test_each_approved_update_on_the_built_in_store_is_two_round_trips_before_its_commit(db):
    workflow, lead = WorkflowFactory(), UserFactory()
    proposals = [
        ProposalFactory(
            workflow=workflow,
            record_id=CustomerFactory().record_id,
            status=ProposalStatus.APPROVED,
            decided_by=lead,
            decided_at=timezone.now(),
        )
        for _ in range(5)
    ]
    proposals_apply(proposal_ids=[proposals[0].pk], worker="warm-up")  # statements are prepared once per connection
    sent: list[str] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "SAVEPOINT" not in sql:  # each write's own transaction, a savepoint inside the test's
            sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        results = proposals_apply(proposal_ids=[p.pk for p in proposals[1:]], worker="worker@test/1")
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 4
    # Per write: lock the proposal and the record and read the stop switches; then write the
    # record, mark the proposal applied and store the Change and its audit events.
    assert len(sent) == CHUNK_READS + 2 * 4
