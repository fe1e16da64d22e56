"""A record as each person may see it: the events of their workflows, the fields those workflows may
read, suggest or write, and nothing at all of a record out of their sight."""

import re

import pytest
from django.urls import reverse

from approvals.models import FieldPolicy
from tests.helpers.two_workflows import A_MARK, B_MARK, NOBODY_MARK, TwoWorkflows, two_workflows


@pytest.fixture
def world(db) -> TwoWorkflows:  # type: ignore[no-untyped-def]
    return two_workflows()


def _timeline(world: TwoWorkflows, record_type: str = "customer", record_id: str = "") -> str:
    return reverse("record-timeline", args=[record_type, record_id or world.customer.record_id])


def _current_values(html: str) -> dict[str, str]:
    block = html.split("<summary>Current values</summary>")[1].split("</details>")[0]
    return dict(re.findall(r'<th scope="row">([^<]+)</th><td>([^<]*)</td>', block))


def test_the_lead_reads_the_fields_a_covers_and_the_rest_is_withheld(client, world):
    client.force_login(world.people["lead"])
    html = client.get(_timeline(world)).content.decode()
    values = _current_values(html)
    assert values["full name"] == "Morag Fraser"
    assert values["shipping address"] == f"12 Harbour Road {A_MARK}"
    assert values["support notes"] == values["internal notes"] == values["email"] == "(withheld)"
    assert B_MARK not in html and NOBODY_MARK not in html


def test_the_timeline_shows_only_the_events_of_workflows_in_sight(client, world):
    client.force_login(world.people["lead"])
    html = client.get(_timeline(world)).content.decode()
    assert "refund-notes" not in html
    assert html.count("<strong>change.applied</strong>") == 1  # A's; B's note on the same customer is not shown
    client.force_login(world.people["auditor"])
    html = client.get(_timeline(world)).content.decode()
    assert html.count("<strong>change.applied</strong>") == 2


def test_the_state_at_a_moment_withholds_the_same_fields_and_whether_they_changed(client, world):
    client.force_login(world.people["lead"])
    before = world.a.change.applied_at.strftime("%Y-%m-%dT%H:%M:%S")
    html = client.get(_timeline(world), {"at": "2026-01-01T00:00:00"}).content.decode()
    state = html.split('aria-label="State at"')[1].split("Around that moment")[0]
    assert (
        '<th scope="row">support notes</th><td data-field="support_notes">(withheld)</td><td>(withheld)</td>' in state
    )
    assert '<td data-field="shipping_address">4 Old Mill Lane, Leith</td>' in state
    assert B_MARK not in html and NOBODY_MARK not in html
    assert client.get(_timeline(world), {"at": before}).status_code == 200


def test_a_record_s_name_is_withheld_from_those_whose_workflows_cannot_read_it(client, world):
    FieldPolicy.objects.filter(workflow=world.a.workflow, field="full_name").delete()
    client.force_login(world.people["lead"])
    html = client.get(_timeline(world)).content.decode()
    assert "Morag Fraser" not in html
    assert f"{world.customer.record_id} · (withheld)</h1>" in html


def test_a_record_out_of_sight_is_not_found_and_the_search_says_so_as_for_an_unknown_one(client, world):
    client.force_login(world.people["lead"])
    assert client.get(_timeline(world, "order", world.order.record_id)).status_code == 404
    html = client.get(reverse("record-search"), {"q": world.order.record_id}).content.decode()
    assert f"No order {world.order.record_id} in the records or the trail" in html
    unknown = client.get(reverse("record-search"), {"q": "ORD-99999"}).content.decode()
    assert "No order ORD-99999 in the records or the trail" in unknown
    found = client.get(reverse("record-search"), {"q": world.customer.record_id})
    assert found.status_code == 302 and found["Location"] == _timeline(world)


def test_a_superuser_in_no_group_finds_no_record(client, world):
    client.force_login(world.people["root"])
    assert client.get(_timeline(world)).status_code == 404
    html = client.get(reverse("record-search"), {"q": world.customer.record_id}).content.decode()
    assert f"No customer {world.customer.record_id} in the records or the trail" in html
    assert "No changes have been applied yet." in html


def test_recently_changed_lists_the_changes_of_workflows_in_sight(client, world):
    client.force_login(world.people["lead"])
    html = client.get(reverse("record-search")).content.decode()
    assert reverse("trace-change", args=[world.a.change.id]) in html
    assert reverse("trace-change", args=[world.b.change.id]) not in html and world.order.record_id not in html
    client.force_login(world.people["ops"])
    html = client.get(reverse("record-search")).content.decode()
    assert reverse("trace-change", args=[world.b.change.id]) in html


def test_a_record_only_an_event_of_a_workflow_in_sight_touched_is_found(client, world):
    """B's approvers see the order (B covers order fields) but not a ticket, unless B did something to it."""
    fin = world.b.workflow.approver_group.user_set.get()
    client.force_login(fin)
    assert client.get(_timeline(world, "order", world.order.record_id)).status_code == 200
    ticket = world.customer.tickets.get()
    assert client.get(_timeline(world, "ticket", ticket.record_id)).status_code == 404


def test_whether_a_record_was_archived_is_shown_with_the_record(client, world):
    from audit.services import Actor, audit_record

    audit_record(
        action="change.applied",
        actor=Actor.worker("w/1"),
        record_type="customer",
        record_id=world.customer.record_id,
        field="archived_at",
        old_value=None,
        new_value="2026-11-27T14:00:00+00:00",
        workflow_slug=world.a.workflow.slug,
    )
    client.force_login(world.people["lead"])
    html = client.get(_timeline(world)).content.decode()
    assert '<span class="field-name">archived</span>: <del>(empty)</del> → <ins>2026-11-27T14:00:00+00:00</ins>' in html
