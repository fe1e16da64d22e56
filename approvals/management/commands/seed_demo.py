import random
from pathlib import Path

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from approvals.demo import records as demo_records
from approvals.demo import undo as demo_undo
from approvals.demo.artifacts import store_demo_artifacts
from approvals.demo.proposals import HALTED_APPROVED, HALTED_BATCH, seed_held_work, seed_proposals
from approvals.intake.accounts import service_account_create
from approvals.models import Workflow
from approvals.workflows.loading import workflows_load
from audit.models import Artifact
from audit.services import Actor
from records.services.imports import records_import_csv_text

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_USERS = {
    "lead": ("Dana", "Lee", "support-leads"),
    "ops": ("Sam", "Okafor", "ops-managers"),
    "agent": ("Alex", "Reid", "support-agents"),
    "owner": ("Morgan", "Hale", "workflow-owners"),
}


class Command(BaseCommand):
    help = "Load the demo: users per role, a few hundred records, workflows in each lane and stage."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the demo is already loaded")

    def handle(self, *args: object, if_empty: bool, **options: object) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(username__in=DEMO_USERS).exists() or demo_records.demo_records_present():
            message = "The demo data is already loaded."
            if if_empty:
                self.stdout.write(message)
                return
            self.stderr.write(message + " Start from an empty database to load it again.")
            raise SystemExit(1)
        actor = Actor.system("seed_demo")
        rng = random.Random(20261127)
        with transaction.atomic():
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
            for record_type, build in (
                ("customer", demo_records.customers_csv),
                ("order", demo_records.orders_csv),
                ("ticket", demo_records.tickets_csv),
            ):
                records_import_csv_text(record_type=record_type, text=build(rng), source="seed_demo", actor=actor)
            document = yaml.safe_load((DEMO_DIR / "workflows.yaml").read_text())
            workflows_load(document=document, actor=actor)
            tokens = []
            accounts = {}
            for workflow in Workflow.objects.order_by("slug"):
                issued = service_account_create(workflow=workflow, name=f"{workflow.slug}-pipeline", actor=actor)
                tokens.append(f"{workflow.slug}: {issued.token}")
                accounts[workflow.slug] = issued.account
            proposals = seed_proposals(accounts=accounts)
            held = seed_held_work(accounts=accounts)
            store_demo_artifacts(actor=actor)
        bad_batch = demo_undo.applied_bad_batch(actor=actor)
        token_file = Path(settings.VAR_DIR) / "demo-tokens.txt"
        token_file.write_text("\n".join(tokens) + "\n")
        token_file.chmod(0o600)
        self.stdout.write(
            f"Demo loaded: {len(DEMO_USERS)} users, {demo_records.CUSTOMERS} customers, {demo_records.ORDERS} orders, "
            f"{demo_records.TICKETS} tickets, {Workflow.objects.count()} workflows, "
            f"{sum(proposals.values())} proposals (one bulk batch to approve as a group), "
            f"{sum(held.values())} more held: '{HALTED_BATCH}' ({HALTED_APPROVED} approved, halted by its pipeline's "
            "stop switch) and one approved change an agent's edit turns into a conflict; "
            f"{Artifact.objects.count()} AI artifacts "
            "(refund-notes keeps its prompts and outputs for 2 minutes: watch them being purged). "
            f"Pipeline tokens for the demo are in {token_file}."
        )
        self.stdout.write(
            f"A bad batch to undo: batch {bad_batch.pk} ({bad_batch.name}), at /undo/?batch={bad_batch.pk}"
        )
