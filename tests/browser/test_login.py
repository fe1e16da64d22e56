import pytest

from tests.helpers.factories import UserFactory

pytestmark = pytest.mark.browser


def test_a_lead_logs_in_and_sees_the_navigation(page, login, transactional_db):
    UserFactory(username="lead", password="lead", first_name="Dana")
    login("lead", "lead")
    navigation = page.get_by_role("navigation", name="Main")
    assert navigation.get_by_role("link", name="Workflows").is_visible()
    assert page.get_by_role("button", name="Log out").is_visible()


def test_a_wrong_password_is_told_plainly(page, login, transactional_db):
    UserFactory(username="lead", password="lead")
    login("lead", "wrong")
    assert page.get_by_role("alert").inner_text().startswith("Your username and password didn't match")
    assert page.get_by_label("Username").input_value() == "lead"  # only the password is typed again
    assert page.get_by_label("Password").evaluate("element => element === document.activeElement")
