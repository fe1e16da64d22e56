from approvals.models import Proposal
from core.bulk import bulk_insert
from tests.helpers.factories import ProposalFactory, WorkflowFactory


def test_rows_go_in_in_order_with_ascending_ids_and_their_exact_values(db):
    workflow = WorkflowFactory()
    ProposalFactory(workflow=workflow)
    built = [
        ProposalFactory.build(
            workflow=workflow,
            record_id=f"CUS-{n}",
            changes={"tags": ["vip", f"n{n}"], "note": None},
            base={},
            follow_ups=[],
            base_version=None if n % 2 else n,
            confidence=0.5 + n / 100,
        )
        for n in range(5)
    ]
    bulk_insert(Proposal, built)
    ids = [p.pk for p in built]
    assert ids == sorted(ids)
    assert all(p._state.adding is False for p in built)
    stored = list(Proposal.objects.filter(pk__in=ids).order_by("pk"))
    assert [p.record_id for p in stored] == [f"CUS-{n}" for n in range(5)]
    assert stored[1].changes == {"tags": ["vip", "n1"], "note": None}
    assert [p.base_version for p in stored] == [0, None, 2, None, 4]
    assert [p.confidence for p in stored] == [0.5, 0.51, 0.52, 0.53, 0.54]
    assert stored[0].flagged_fields == []
    new = ProposalFactory(workflow=workflow)
    assert new.pk > ids[-1]
