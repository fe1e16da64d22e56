"""The text rule: which characters are refused, how each refusal reads, and how refused text is shown."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.text import escape_refused, refused_character, text_problem
from tests.helpers.hostile import REFUSED_CHARACTERS

NUL = "a NUL character"
SURROGATE = "a lone surrogate, which is not Unicode text"
BIDI = "a bidirectional control character, which makes text read out of order"


@pytest.mark.parametrize(
    ("text", "kind", "where"),
    [
        ("ab\x00", NUL, "U+0000 at character 3"),
        ("\ud800", SURROGATE, "U+D800 at character 1"),
        ("x\udfff", SURROGATE, "U+DFFF at character 2"),
        ("\u202a", BIDI, "U+202A at character 1"),
        ("abc\u202e", BIDI, "U+202E at character 4"),
        ("\u2066", BIDI, "U+2066 at character 1"),
        ("\u2069 and \x00", BIDI, "U+2069 at character 1"),
    ],
)
def test_each_refused_character_is_named_with_where_it_is(text, kind, where):
    assert text_problem(text) == f"must not contain {kind} ({where})"


@pytest.mark.parametrize(
    "text",
    [
        "12 Harbour Road, Leith",
        "",
        "שלום עולם",  # right-to-left letters need no control characters
        "مرحبا\u200f",  # the right-to-left mark only marks, it reorders nothing around it
        "\u200eLTR mark",
        "\u2029\u202f\u2065\u206a",  # the neighbours of the refused ranges
        "emoji \U0001f600 and tab\t and bell\x07",
    ],
)
def test_other_text_is_accepted(text):
    assert text_problem(text) is None
    assert refused_character(text) is None
    assert escape_refused(text) == text


def test_refused_text_is_shown_as_escapes_it_can_be_sent_as():
    shown = escape_refused("a\udfffb\x00c\u202ed\u2066")
    assert shown == "a\\udfffb\\u0000c\\u202ed\\u2066"
    assert shown.encode("utf-8")


@given(st.text(st.one_of(st.characters(), REFUSED_CHARACTERS)))
def test_escaping_json_text_keeps_the_value_it_holds(text):
    shown = escape_refused(json.dumps({"value": text}, ensure_ascii=False))
    assert refused_character(shown) is None
    assert json.loads(shown) == {"value": text}
