import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction

from approvals.demo import records as demo_records
from approvals.intake.accounts import service_account_authenticate
from approvals.models import Proposal, ServiceAccount, Workflow
from audit.models import Artifact
from records.models import Change, Customer, Order, Ticket


def test_seed_demo_loads_users_records_and_workflows_once(db, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    for name in ("lead", "ops", "agent", "owner"):
        assert authenticate(username=name, password=name) is not None
    assert Customer.objects.count() >= 200
    assert Order.objects.count() >= 200
    assert Ticket.objects.count() >= 200
    assert {w.stage for w in Workflow.objects.all()} == {"draft", "shadow", "canary", "live", "paused"}
    assert ServiceAccount.objects.count() == Workflow.objects.count()
    first_names = list(Customer.objects.order_by("record_id").values_list("full_name", flat=True)[:5])
    call_command("seed_demo", "--if-empty")
    assert "already loaded" in capsys.readouterr().out
    assert list(Customer.objects.order_by("record_id").values_list("full_name", flat=True)[:5]) == first_names
    call_command("verify_audit")


def test_seed_demo_stores_the_same_demo_on_every_empty_database(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = seeded_then_rolled_back()
    second = seeded_then_rolled_back()
    assert len(first["customers"]) == demo_records.CUSTOMERS
    assert first["changes"] and first["proposals"]
    for kind in first:
        assert second[kind] == first[kind], kind


def seeded_then_rolled_back() -> dict[str, list[tuple[Any, ...]]]:
    """What one run of seed_demo stores, leaving the database empty again for the next run."""
    with transaction.atomic():
        call_command("seed_demo")
        stored = stored_demo()
        transaction.set_rollback(True)
    assert not Customer.objects.exists()
    return stored


def stored_demo() -> dict[str, list[tuple[Any, ...]]]:
    """Every value the demo stores that a person sees, in the order it was stored; ids and times aside,
    and the rollback drills' throwaway records and proposals, whose ids are new on every run."""
    return {
        "customers": list(
            Customer.objects.exclude(record_id__contains="DRILL")
            .order_by("record_id")
            .values_list(
                "record_id",
                "full_name",
                "email",
                "phone",
                "shipping_address",
                "billing_status",
                "account_status",
                "verified",
                "priority",
                "sentiment",
                "tags",
                "support_notes",
                "internal_notes",
                "version",
            )
        ),
        "orders": list(
            Order.objects.order_by("record_id").values_list(
                "record_id", "customer__record_id", "order_number", "amount", "status", "refund_status", "version"
            )
        ),
        "tickets": list(
            Ticket.objects.order_by("record_id").values_list(
                "record_id", "customer__record_id", "subject", "status", "priority", "resolution_note", "version"
            )
        ),
        "workflows": list(Workflow.objects.order_by("slug").values_list("slug", "lane", "stage")),
        "proposals": list(
            Proposal.objects.exclude(batch__name__startswith="rollback drill")
            .order_by("pk")
            .values_list(
                "workflow__slug", "batch__name", "record_type", "record_id", "action", "changes", "base", "status"
            )
        ),
        "changes": list(
            Change.objects.exclude(record_id__contains="DRILL")
            .order_by("record_type", "record_id", "applied_at")
            .values_list("record_type", "record_id", "action", "before", "after")
        ),
        "artifacts": list(
            Artifact.objects.order_by("workflow_slug", "name").values_list(
                "workflow_slug", "name", "kind", "bucket", "sha256"
            )
        ),
    }


def test_seed_demo_refuses_to_load_anything_with_debug_off(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.DEBUG = False
    for arguments in ([], ["--if-empty"]):
        with pytest.raises(CommandError, match="runs only with DEBUG on"):
            call_command("seed_demo", *arguments)
    assert not get_user_model().objects.exists()
    assert not Customer.objects.exists() and not Workflow.objects.exists()
    assert not (tmp_path / "demo-tokens.txt").exists()


REPOSITORY = Path(__file__).resolve().parents[3]


def test_seed_demo_names_the_token_file_in_its_var_dir_on_every_start(db, settings, tmp_path, capsys):
    # COUNTERSIGN_VAR_DIR moves the database, so the tokens live there too; make run prints this line.
    settings.VAR_DIR = tmp_path
    token_file = tmp_path / "demo-tokens.txt"
    call_command("seed_demo", "--if-empty")
    assert f"Pipeline tokens for the demo are in {token_file}." in capsys.readouterr().out
    call_command("seed_demo", "--if-empty")
    assert capsys.readouterr().out.strip() == (
        f"The demo data is already loaded. Pipeline tokens for the demo are in {token_file}."
    )
    token_file.unlink()
    call_command("seed_demo", "--if-empty")
    assert f"Its pipeline tokens are not in {token_file}; issue a new one with" in capsys.readouterr().out


def test_the_readme_reads_the_demo_token_from_the_var_dir_seed_demo_wrote_it_to(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    readme = (REPOSITORY / "README.md").read_text()
    [snippet] = [line for line in readme.splitlines() if line.startswith("TOKEN=$(")]
    run = subprocess.run(
        ["bash", "-c", f'{snippet}\nprintf %s "$TOKEN"'],
        cwd=REPOSITORY,
        env={"PATH": os.environ["PATH"], "COUNTERSIGN_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    account = service_account_authenticate(token=run.stdout)
    assert account is not None and account.workflow.slug == "address-updates", run.stderr


def test_manage_py_has_debug_on_unless_told_otherwise_so_make_run_loads_the_demo():
    # make run calls manage.py without DJANGO_SETTINGS_MODULE: its default settings turn DEBUG on.
    env = {name: value for name, value in os.environ.items() if name not in ("DJANGO_SETTINGS_MODULE", "DEBUG")}
    show = "from django.conf import settings; print(settings.DEBUG)"
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", show],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert run.stdout.strip() == "True"


def test_the_demo_has_one_workflow_ready_and_live_and_one_held_in_canary(db, settings, tmp_path):
    from approvals.readiness.checks import readiness_by_workflow

    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    workflows = list(Workflow.objects.order_by("slug"))
    readiness = readiness_by_workflow(workflows)
    by_slug = {workflow.slug: (workflow, readiness[workflow.pk]) for workflow in workflows}

    address, ready = by_slug["address-updates"]
    assert address.stage == "live" and address.forced_stage is None
    assert all(check.passed for check in ready.checks)
    refunds, held = by_slug["refund-notes"]
    assert refunds.stage == "canary" and not held.released_against_readiness
    assert [check.number for check in held.failing("live")] == [7, 9]
    assert "it has been in canary 1 d 0 h of 3 days" in held.checks[8].detail
    forced = sorted(slug for slug, (_, result) in by_slug.items() if result.released_against_readiness)
    assert forced == ["duplicate-merge", "reply-drafts"]
    call_command("verify_audit")


def test_the_demo_has_a_prompt_version_stopped_by_the_circuit_breaker(db, settings, tmp_path):
    from approvals.models import StopSwitch

    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    [stop] = StopSwitch.objects.filter(released_at__isnull=True, scope="workflow")
    assert stop.workflow is not None and stop.workflow.slug == "duplicate-merge"
    assert stop.breaker_prompt_version == "dedupe@3"
    assert stop.reason.startswith("circuit breaker: prompt version dedupe@3 rejected at 40%, over its limit of 30%")
    statuses = list(Proposal.objects.filter(prompt_version="dedupe@3").values_list("status", flat=True))
    assert sorted(statuses) == ["approved"] * 6 + ["pending"] * 4 + ["rejected"] * 4
    # Its pending proposals are marked on the lead's queue.
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="lead"))
    page = client.get("/review/?workflow=duplicate-merge").content.decode()
    assert page.count("breaker tripped for this prompt version") == 4
