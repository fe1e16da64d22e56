"""404, 403 and 500 pages, with DEBUG off as in production: inside the app frame, with the menu and a
way back, and saying nothing of what exists or what broke."""

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.views.defaults import permission_denied

from core.views import server_error
from tests.helpers.factories import UserFactory


@pytest.fixture(autouse=True)
def production_like(settings):  # type: ignore[no-untyped-def]
    settings.DEBUG = False


@pytest.fixture
def lead(client, db):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(username="lead"))
    return client


def _in_the_frame(html: str) -> None:
    assert '<nav aria-label="Main">' in html
    assert f'href="{reverse("review-queue")}"' in html and f'href="{reverse("trail")}"' in html
    assert "Go to your start page" in html


def test_an_unknown_address_is_a_404_page_in_the_app_frame(lead):
    response = lead.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    _in_the_frame(html)
    assert "<title>Not found · Countersign</title>" in html
    assert "There is nothing here" in html


def test_a_page_out_of_sight_reads_like_one_that_does_not_exist(lead):
    """The view's own reason for the 404 is not shown: it would say what exists."""
    html = lead.get(reverse("trace-proposal", args=[424242])).content.decode()
    assert "There is nothing here" in html
    assert "nothing in the records or the trail" not in html


def test_someone_logged_out_is_offered_the_login_instead_of_the_menu(client, db):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert '<nav aria-label="Main">' not in html
    assert f'href="{reverse("login")}?next=/no/such/page/"' in html


def test_an_expired_form_is_a_403_page_that_says_what_to_do(db):
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="lead"))
    response = client.post(reverse("logout"))
    assert response.status_code == 403
    html = response.content.decode()
    _in_the_frame(html)
    assert "This form had expired, so nothing was done" in html
    assert "reload the page and send the form again" in html
    assert "CSRF verification failed" not in html


def test_a_refusal_is_a_403_page_in_the_app_frame(db):
    request = RequestFactory().get("/admin-only/")
    request.user = UserFactory(username="agent")
    request.session = {}  # type: ignore[assignment]
    response = permission_denied(request, PermissionDenied("internal detail"))
    assert response.status_code == 403
    html = response.content.decode()
    _in_the_frame(html)
    assert "You may not open this page" in html
    assert "internal detail" not in html


def test_a_failure_is_a_500_page_in_the_app_frame_that_shows_nothing_of_the_failure(lead, monkeypatch):
    def broken(**_: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("approvals.trace.views.trace_for_proposal", broken)
    lead.raise_request_exception = False
    response = lead.get(reverse("trace-proposal", args=[1]))
    assert response.status_code == 500
    html = response.content.decode()
    assert '<nav aria-label="Main">' in html
    assert "Something went wrong on our side" in html
    assert "secret internals" not in html and "Traceback" not in html


def test_the_500_page_reads_neither_the_database_nor_the_user(db, django_assert_num_queries):
    def unloadable() -> None:
        raise RuntimeError("the session store is down")

    request = RequestFactory().get("/review/")
    request.user = SimpleLazyObject(unloadable)  # type: ignore[assignment]
    with django_assert_num_queries(0):
        response = server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    _in_the_frame(html)
    assert "Log out" not in html
