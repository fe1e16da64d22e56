from django.urls import reverse

from tests.helpers.factories import UserFactory


def test_login_shows_the_navigation(client, db):
    UserFactory(username="lead", password="lead")
    response = client.post(reverse("login"), {"username": "lead", "password": "lead"}, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'aria-label="Main"' in html
    assert "Workflows" in html
    assert "Log out" in html


def test_pages_need_a_login(client, db):
    response = client.get(reverse("workflow-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_htmx_is_served_locally(client, db):
    UserFactory(username="lead", password="lead")
    client.login(username="lead", password="lead")
    html = client.get(reverse("workflow-list")).content.decode()
    assert "/static/vendor/htmx.min.js" in html
    assert "https://" not in html.split("<body")[0]
    assert "hx-headers" in html


def test_health_needs_no_auth(client, db):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
