"""A refusal as a page says it: next to the field it is about, the rest in plain words."""

from core.errors import NotAllowed, ValidationFailed


def test_a_page_shows_each_problem_next_to_its_field_and_the_rest_without_field_names():
    error = ValidationFailed([("reason", "say why"), ("revision", "reload the page"), ("reason", "say more")])
    assert error.on_fields({"reason"}) == ({"reason": "say why; say more"}, "reload the page")
    assert error.plain == "say why; reload the page; say more"
    assert error.message == "reason: say why; revision: reload the page; reason: say more"  # the API's words


def test_a_refusal_of_one_field_goes_next_to_it_when_the_page_shows_it():
    error = NotAllowed("you may not stop refund-notes", field="workflow")
    assert error.on_fields({"workflow"}) == ({"workflow": "you may not stop refund-notes"}, "")
    assert error.on_fields({"reason"}) == ({}, "you may not stop refund-notes")
