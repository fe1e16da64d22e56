"""Forms say what is wrong in plain words, once per field."""

from django import forms

from core.errors import ValidationFailed
from core.forms import PlainForm


class Sample(PlainForm):
    colour = forms.ChoiceField(choices=[("red", "Red"), ("blue", "Blue")])
    count = forms.IntegerField(min_value=1, required=False)
    when = forms.DateTimeField(required=False)
    note = forms.CharField(required=False, error_messages={"max_length": "A note this long is a letter."}, max_length=3)

    def clean(self) -> dict:
        data = super().clean() or {}
        if not data.get("count"):
            self.add_error_once("count", "Say how many.")
        return data


def test_stock_messages_are_replaced_by_what_to_do():
    form = Sample({"colour": "green", "count": "0", "when": "soon"})
    assert form.errors == {
        "colour": ["Choose one of the options offered."],
        "count": ["Enter 1 or more."],
        "when": ["Enter a date and time, such as 2026-11-27 14:00."],
    }


def test_a_check_across_fields_adds_nothing_to_a_field_that_already_says_what_is_wrong():
    assert Sample({"colour": "red", "count": "x"}).errors == {"count": ["Enter a whole number, such as 12."]}
    assert Sample({"colour": "red"}).errors == {"count": ["Say how many."]}


def test_words_a_field_was_given_where_it_is_declared_are_kept():
    assert Sample({"colour": "red", "count": "2", "note": "long"}).errors == {"note": ["A note this long is a letter."]}


def test_a_services_refusal_goes_next_to_the_fields_it_names_and_the_rest_above_the_form():
    form = Sample({"colour": "red", "count": "2"})
    assert form.is_valid()
    form.add_refusal(ValidationFailed([("count", "too many for this batch"), ("revision", "reload the page")]))
    assert form.errors == {"count": ["too many for this batch"], "__all__": ["reload the page"]}
