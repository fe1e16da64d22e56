from django.contrib.auth import authenticate
from django.core.management import call_command

from approvals.models import ServiceAccount, Workflow
from records.models import Customer, Order, Ticket


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


def test_seed_demo_is_deterministic(db, settings, tmp_path):
    import random

    from approvals.demo.records import customers_csv

    assert customers_csv(random.Random(1)) == customers_csv(random.Random(1))
