"""A trace is there for those who see its workflow, with the values of fields their workflows do not
cover withheld."""

import html
import re

from django.urls import reverse
from django.utils.html import strip_tags

from approvals.models import FieldPolicy
from tests.helpers.two_workflows import A_MARK, B_MARK, two_workflows


def _summary(page: str) -> str:
    block = page.split('aria-label="Summary">')[1].split("</p>")[0]
    return html.unescape(re.sub(r"\s+", " ", strip_tags(block))).strip()


def test_a_trace_is_not_found_out_of_sight_and_withholds_a_field_no_longer_covered(client, db):
    world = two_workflows()
    client.force_login(world.people["lead"])
    for url in (
        reverse("trace-change", args=[world.b.change.id]),
        reverse("trace-proposal", args=[world.b.applied.pk]),
    ):
        assert client.get(url).status_code == 404
    url = reverse("trace-change", args=[world.a.change.id])
    summary = _summary(client.get(url).content.decode())
    assert f"changed shipping address from '4 Old Mill Lane, Leith' to '12 Harbour Road {A_MARK}'" in summary
    FieldPolicy.objects.filter(workflow=world.a.workflow, field="shipping_address").delete()
    page = client.get(url).content.decode()
    assert "changed shipping address from (withheld) to (withheld)" in _summary(page)
    assert f"12 Harbour Road {A_MARK}" not in page and B_MARK not in page
