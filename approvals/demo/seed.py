"""The whole demo, loaded in one go: users per role, records, workflows, their pipelines and work to do."""

import random
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from approvals.demo import records as demo_records
from approvals.demo import undo as demo_undo
from approvals.demo.artifacts import store_demo_artifacts
from approvals.demo.history import Past, clock_at, demo_history, past_begins
from approvals.demo.noticing import demo_breaker
from approvals.demo.proposals import HALTED_APPROVED, HALTED_BATCH, seed_held_work, seed_proposals
from approvals.demo.readiness import canary_history, demo_readiness, starting_stages
from approvals.intake.accounts import service_account_create
from approvals.models import Batch, ServiceAccount, Workflow
from approvals.workflows.loading import workflows_load
from approvals.workflows.releases import prompt_releases_in_use
from approvals.workflows.stage_gate import StageForce
from audit.models import Artifact
from audit.services import Actor
from records.services.imports import records_import_csv_text

WORKFLOWS_FILE = Path(__file__).resolve().parent / "workflows.yaml"
# username: (first name, last name, group); each password is the username, in the embedded demo only.
DEMO_USERS = {
    "lead": ("Dana", "Lee", "support-leads"),
    "ops": ("Sam", "Okafor", "ops-managers"),
    "agent": ("Alex", "Reid", "support-agents"),
    "owner": ("Morgan", "Hale", "workflow-owners"),
}
SEED = 20261127
# The demo shows a workflow at every stage on a fresh database, where no drill or review has run yet.
DEMO_FORCE_REASON = "The demo shows a workflow at each stage before any drill or review exists"


@dataclass(frozen=True)
class DemoSeeded:
    readiness: str
    tokens: list[str]
    proposals: int
    held: int
    bad_batch: Batch
    past: Past

    def summary(self, *, token_file: Path) -> str:
        return (
            f"Demo loaded: {len(DEMO_USERS)} users, {demo_records.CUSTOMERS} customers, {demo_records.ORDERS} orders, "
            f"{demo_records.TICKETS} tickets, {Workflow.objects.count()} workflows, "
            f"{self.proposals} proposals (one bulk batch to approve as a group), "
            f"{self.held} more held: '{HALTED_BATCH}' ({HALTED_APPROVED} approved, halted by its pipeline's "
            "stop switch) and one approved change an agent's edit turns into a conflict; "
            f"{self.past.overdue} more sent hours ago, past their time to decide; "
            f"{self.past.decided} decided over the last four weeks (see each workflow's quality page); "
            f"{Artifact.objects.count()} AI artifacts "
            "(refund-notes keeps its prompts and outputs for 2 minutes: watch them being purged). "
            f"Pipeline tokens for the demo are in {token_file}.\n"
            f"A bad batch to undo: batch {self.bad_batch.pk} ({self.bad_batch.name}), "
            f"at /undo/?batch={self.bad_batch.pk}\n{self.readiness}"
        )


def demo_loaded() -> bool:
    user_model = get_user_model()
    return user_model.objects.filter(username__in=DEMO_USERS).exists() or demo_records.demo_records_present()


def _users() -> None:
    user_model = get_user_model()
    for username, (first, last, group_name) in DEMO_USERS.items():
        user = user_model.objects.create_user(
            username=username,
            password=username,
            first_name=first,
            last_name=last,
            email=f"{username}@countersign.example",
        )
        user.groups.add(Group.objects.get_or_create(name=group_name)[0])
        if username == "owner":
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])


def _records(actor: Actor) -> None:
    rng = random.Random(SEED)
    for record_type, build in (
        ("customer", demo_records.customers_csv),
        ("order", demo_records.orders_csv),
        ("ticket", demo_records.tickets_csv),
    ):
        records_import_csv_text(record_type=record_type, text=build(rng), source="seed_demo", actor=actor)


def _pipelines(actor: Actor) -> tuple[list[str], dict[str, ServiceAccount]]:
    tokens, accounts = [], {}
    for workflow in Workflow.objects.order_by("slug"):
        issued = service_account_create(workflow=workflow, name=f"{workflow.slug}-pipeline", actor=actor)
        tokens.append(f"{workflow.slug}: {issued.token}")
        accounts[workflow.slug] = issued.account
    return tokens, accounts


def demo_seed() -> DemoSeeded:
    """Load the demo into an empty database; the caller checks `demo_loaded()` first."""
    actor = Actor.system("seed_demo")
    with transaction.atomic():
        # The demo's past begins four weeks ago: what it stands on is made then, and the weeks since are
        # lived in order (approvals/demo/history.py) before today's work.
        with clock_at(past_begins()):
            _users()
            _records(actor)
            owner = get_user_model().objects.get(username="owner")
            workflows_load(
                document=starting_stages(yaml.safe_load(WORKFLOWS_FILE.read_text())),
                actor=actor,
                force=StageForce(reason=DEMO_FORCE_REASON, user=owner),
            )
            tokens, accounts = _pipelines(actor)
        canary_history()
        past = demo_history(accounts=accounts)
        proposals = seed_proposals(accounts=accounts)
        held = seed_held_work(accounts=accounts)
        prompt_releases_in_use()  # the demo's pipelines used these prompt versions before the seed's day
        store_demo_artifacts(actor=actor)
    # Applied after the rest commits, as a worker would have: its changes are what the undo demo takes back.
    bad_batch = demo_undo.applied_bad_batch(actor=actor)
    readiness = demo_readiness(actor=actor)
    breaker = demo_breaker(accounts=accounts)
    if breaker is not None:
        readiness += f"\nStopped by itself: {breaker.reason}"
    return DemoSeeded(
        readiness=readiness,
        tokens=tokens,
        proposals=sum(proposals.values()),
        held=sum(held.values()),
        bad_batch=bad_batch,
        past=past,
    )
