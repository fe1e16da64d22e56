import pytest

from records.catalogue import CUSTOMER, ORDER, RECORD_TYPES, Risk, clean_held_value, clean_value


def test_high_risk_fields_match_the_design():
    high = {(t.name, f.name) for t in RECORD_TYPES.values() for f in t.fields if f.risk == Risk.HIGH}
    assert ("customer", "billing_status") in high
    assert ("customer", "shipping_address") in high
    assert ("order", "refund_status") in high
    assert ("ticket", "resolution_note") in high
    low = {(t.name, f.name) for t in RECORD_TYPES.values() for f in t.fields if f.risk == Risk.LOW}
    assert low == {
        ("customer", "priority"),
        ("customer", "sentiment"),
        ("customer", "tags"),
        ("ticket", "subject"),
        ("ticket", "priority"),
    }


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("billing_status", "past_due", "past_due"),
        ("verified", True, True),
        ("tags", ["vip", "b2b"], ["vip", "b2b"]),
        ("email", " maria@example.com ", "maria@example.com"),
    ],
)
def test_clean_customer_values(field, value, expected):
    assert clean_value(CUSTOMER.field(field), value) == expected


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("billing_status", "late", "'late' is not one of ok, past_due, refunded, disputed"),
        ("verified", "yes", "must be true or false"),
        ("email", "not-an-email", "is not a valid email address"),
        ("full_name", "x" * 201, "at most 200 characters"),
        ("full_name", "Ann\x00", "NUL"),
        ("tags", "vip", "list of strings"),
        ("priority", None, "must not be null"),
    ],
)
def test_bad_customer_values_say_why(field, value, message):
    with pytest.raises(ValueError, match=message):
        clean_value(CUSTOMER.field(field), value)


def test_amounts_are_decimals_with_two_places():
    amount = ORDER.field("amount")
    assert clean_value(amount, "12.5") == "12.50"
    assert clean_value(amount, 7) == "7.00"
    with pytest.raises(ValueError, match="at most 2 decimal places"):
        clean_value(amount, "1.234")
    with pytest.raises(ValueError, match="between 0"):
        clean_value(amount, "-3")


def test_text_spellings_from_csv():
    assert clean_value(CUSTOMER.field("verified"), "Yes", from_text=True) is True
    assert clean_value(CUSTOMER.field("tags"), "vip| b2b", from_text=True) == ["vip", "b2b"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [("email", "", ""), ("email", None, ""), ("phone", None, ""), ("tags", None, []), ("tags", [], [])],
)
def test_a_value_a_record_holds_may_be_empty_where_the_field_is_optional(field, value, expected):
    assert clean_held_value(CUSTOMER.field(field), value) == expected


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        (CUSTOMER.field("full_name"), None, "must not be null"),
        (CUSTOMER.field("priority"), "", "is not one of"),
        (CUSTOMER.field("email"), "not-an-email", "is not a valid email address"),
        (CUSTOMER.field("tags"), "", "list of strings"),
        (ORDER.field("amount"), "-3", "between 0"),
    ],
)
def test_a_value_a_record_holds_is_otherwise_cleaned_as_any_value(spec, value, message):
    with pytest.raises(ValueError, match=message):
        clean_held_value(spec, value)
