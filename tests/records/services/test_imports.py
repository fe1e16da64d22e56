import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from records.models import Customer, Order
from tests.helpers.factories import CustomerFactory


def _write(tmp_path, text: str):
    path = tmp_path / "records.csv"
    path.write_text(text)
    return path


def test_imports_every_row_and_records_it(db, tmp_path, capsys):
    path = _write(
        tmp_path,
        "record_id,full_name,email,billing_status,tags\n"
        "CUS-1,Maria Lopez,maria@example.com,ok,vip|b2b\n"
        "CUS-2,James Smith,james@example.com,past_due,\n",
    )
    call_command("import_records", "customer", str(path))
    assert "Imported 2 customer record(s)" in capsys.readouterr().out
    maria = Customer.objects.get(record_id="CUS-1")
    assert (maria.full_name, maria.tags, maria.version) == ("Maria Lopez", ["vip", "b2b"], 1)
    assert AuditEvent.objects.filter(action="record.imported", details__count=2).exists()


def test_unknown_field_is_named_and_nothing_is_imported(db, tmp_path):
    path = _write(tmp_path, "record_id,full_name,loyalty_points\nCUS-1,Maria,10\n")
    with pytest.raises(CommandError, match="row 1, loyalty_points: unknown field for customer"):
        call_command("import_records", "customer", str(path))
    assert not Customer.objects.exists()


def test_bad_value_names_row_and_field_and_nothing_is_imported(db, tmp_path):
    path = _write(tmp_path, "record_id,full_name,billing_status\nCUS-1,Maria,ok\nCUS-2,James,late\n")
    with pytest.raises(CommandError, match="row 3, billing_status: 'late' is not one of"):
        call_command("import_records", "customer", str(path))
    assert not Customer.objects.exists()


def test_orders_must_point_at_existing_customers(db, tmp_path):
    CustomerFactory(record_id="CUS-7")
    path = _write(tmp_path, "record_id,customer,order_number,amount\nORD-1,CUS-7,#1,10\nORD-2,CUS-8,#2,10\n")
    with pytest.raises(CommandError, match="row 3, customer: no customer 'CUS-8'"):
        call_command("import_records", "order", str(path))
    assert not Order.objects.exists()


def test_existing_records_are_not_overwritten(db, tmp_path):
    CustomerFactory(record_id="CUS-1", full_name="Original")
    path = _write(tmp_path, "record_id,full_name\nCUS-1,Replacement\n")
    with pytest.raises(CommandError, match="CUS-1 already exists"):
        call_command("import_records", "customer", str(path))
    assert Customer.objects.get(record_id="CUS-1").full_name == "Original"


def test_unknown_record_type_and_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="unknown record type 'invoice'"):
        call_command("import_records", "invoice", str(_write(tmp_path, "record_id\n")))
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_records", "customer", str(tmp_path / "missing.csv"))
    assert not Customer.objects.exists()
