"""The filters every page uses to show people, field names and record values in words."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from audit.templatetags.display import field_label, person, quoted, shown
from tests.helpers.factories import UserFactory


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "(empty)"),
        ("", "(empty)"),
        (True, "yes"),
        (False, "no"),
        ([], "(none)"),
        (["vip", "b2b"], "vip, b2b"),
        ({"window": "7d", "owner": None}, "window: 7d; owner: (empty)"),
        ("12.50", "12.50"),
    ],
)
def test_a_value_reads_in_words(value, words):
    assert shown(value) == words


def test_a_hidden_state_reads_as_a_flag_with_its_moment():
    with timezone.override("Europe/London"):
        assert shown("2026-07-01T12:00:00+00:00", "archived_at") == "archived at 2026-07-01 13:00:00 BST"
    assert shown(None, "deleted_at") == "not deleted"
    assert shown(datetime(2026, 7, 1, tzinfo=UTC).isoformat(), "shipping_address") == "2026-07-01T00:00:00+00:00"


def test_text_is_quoted_in_a_sentence_and_the_rest_in_words():
    assert (quoted("Leith"), quoted(""), quoted(False)) == ("'Leith'", "(empty)", "no")


def test_field_names_read_as_words():
    assert [field_label(name) for name in ("shipping_address", "archived_at", "deleted_at")] == [
        "shipping address",
        "archived",
        "deleted",
    ]


def test_a_person_is_named_by_full_name_else_username(db):
    assert person(UserFactory(username="lead", first_name="Dana", last_name="Lee")) == "Dana Lee"
    assert person(UserFactory(username="ops", first_name="", last_name="")) == "ops"
    assert person(None) == ""
