from django.core.management import call_command
from django.db.models import Q

from approvals.demo.history import DAILY_RUN
from approvals.demo.noticing import BREAKER_VERSION
from approvals.models import Batch, Proposal
from audit.models import AuditEvent

SWEEP = "Address sweep"
# Batches the demo's readiness evidence made: the rollback drills and the five-step reviews' walks.
READINESS = Q(name__startswith="rollback drill") | Q(name="Five-step review walk")


def test_the_demo_has_pending_proposals_of_every_action_and_one_bulk_batch(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    pending = Proposal.objects.filter(status="pending")
    assert set(pending.values_list("action", flat=True)) == {"update", "archive", "delete", "merge"}
    assert set(pending.values_list("workflow__slug", flat=True)) == {
        "address-updates",
        "refund-notes",
        "duplicate-merge",
    }
    assert Proposal.objects.filter(status="shadowed", workflow__slug="ticket-triage").exists()
    batch = Batch.objects.get(name="Nightly address sweep from support tickets")
    assert batch.proposals.count() == batch.expected_size == 30
    assert set(pending.values_list("requested_by_user__username", flat=True)) == {"agent"}
    # and the halted one (tests/approvals/demo/test_seed_demo_blocks.py) and the applied one to undo
    assert Batch.objects.exclude(READINESS).count() == 3
    assert Batch.objects.filter(READINESS).count() == 4  # a drill and a walk for each of two workflows
    submitted = AuditEvent.objects.filter(action="proposal.submitted")
    assert submitted.count() == Proposal.objects.count()
    merge = pending.filter(action="merge").first()
    assert merge is not None and merge.merge_into.startswith("CUS-")
    call_command("verify_audit")


def test_the_demo_proposals_are_the_same_every_time(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    # The demo's applied batch (the one to undo) and its past are made elsewhere; these are the
    # proposals to review.
    seeded = (
        Proposal.objects.exclude(batch__name__startswith=SWEEP)
        .exclude(batch__in=Batch.objects.filter(READINESS))
        .exclude(prompt_version=BREAKER_VERSION)
        .exclude(run_id__startswith=DAILY_RUN)
    )
    first = list(seeded.order_by("pk").values_list("record_id", "action", "changes", "merge_into"))
    seeded.delete()
    from approvals.demo.proposals import seed_held_work, seed_proposals
    from approvals.models import ServiceAccount, StopSwitch

    accounts = {a.workflow.slug: a for a in ServiceAccount.objects.select_related("workflow")}
    StopSwitch.objects.all().delete()
    Batch.objects.exclude(name__startswith=SWEEP).exclude(READINESS).delete()
    seed_proposals(accounts=accounts)
    seed_held_work(accounts=accounts)
    again = (
        Proposal.objects.exclude(batch__name__startswith=SWEEP)
        .exclude(batch__in=Batch.objects.filter(READINESS))
        .exclude(prompt_version=BREAKER_VERSION)
        .exclude(run_id__startswith=DAILY_RUN)
        .order_by("pk")
    )
    assert list(again.values_list("record_id", "action", "changes", "merge_into")) == first
