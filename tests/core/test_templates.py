"""Every page is rendered through the escaping engine: refused text a template prints is shown escaped."""

from django.template import engines

from core.templates import EscapedTemplate


def test_a_template_from_a_string_shows_refused_text_escaped():
    template = engines["django"].from_string("<p>{{ value }}</p>")
    assert isinstance(template, EscapedTemplate)
    assert template.render({"value": "12 Harbour\udfff\u202e Road"}) == "<p>12 Harbour\\udfff\\u202e Road</p>"


def test_a_page_shows_refused_text_it_was_sent_escaped(client, db):
    page = client.get("/login/?next=/review/%E2%81%A6").content.decode()
    assert 'name="next" value="/review/\\u2066"' in page
