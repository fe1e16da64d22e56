"""Every page carries a Content-Security-Policy that allows only the app's own scripts and styles.
(The browser tests check that nothing on the pages they visit is refused by it.)"""

import pytest
from django.urls import reverse

from tests.helpers.factories import UserFactory

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    header = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


def test_pages_allow_only_their_own_scripts_and_styles(client):
    UserFactory(username="lead", password="lead")
    client.login(username="lead", password="lead")
    policy = _policy(client.get(reverse("workflow-list")))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in str(policy) and "unsafe-eval" not in str(policy)


def test_the_login_page_and_the_api_docs_carry_the_policy_too(client):
    assert _policy(client.get(reverse("login")))["script-src"] == "'self'"
    assert _policy(client.get("/api/v1/docs"))["script-src"] == "'self'"
