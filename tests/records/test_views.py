import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from audit.services import Actor, audit_record
from records.store import RecordRef
from tests.helpers.factories import CustomerFactory, OrderFactory, ProposalFactory, UserFactory
from tests.helpers.pages import error_messages
from tests.helpers.seeing import make_auditor
from tests.helpers.trail import apply_update

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)

# Every page shows the stop, override, store and audit banners: engaged stops, the viewer's stop rights,
# active overrides, stores that do not answer, whether the audit chain was found broken.
BANNERS = 5
# What the viewer may see: an auditor's groups say it is everything.
SCOPE = 1


@pytest.fixture
def lead_client(client, db):  # type: ignore[no-untyped-def]
    """An auditor: these tests are about the pages; who sees what of them is tested in test_scope."""
    client.force_login(make_auditor(UserFactory(username="lead")))
    return client


def _timeline_url(ref: RecordRef) -> str:
    return reverse("record-timeline", args=[ref.record_type, ref.record_id])


def _history(customer, count: int) -> list:  # type: ignore[no-untyped-def]
    ref = RecordRef("customer", customer.record_id)
    return [
        apply_update(ref, {"priority": ["low", "high"][n % 2]}, at=T0 + timedelta(minutes=n), workflow_slug="triage")
        for n in range(count)
    ]


def _event_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="event-(\d+)"', html)]


def test_pages_need_a_login(client, db):
    customer = CustomerFactory()
    for url in (reverse("record-search"), _timeline_url(RecordRef("customer", customer.record_id))):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_records_is_in_the_navigation(lead_client):
    html = lead_client.get(reverse("record-search")).content.decode()
    assert f'href="{reverse("record-search")}"' in html
    assert ">Records<" in html


def test_search_takes_the_id_staff_type_and_opens_the_timeline(lead_client):
    customer = CustomerFactory(record_id="CUS-10432")
    response = lead_client.get(reverse("record-search"), {"q": " cus-10432 "})
    assert response.status_code == 302
    assert response["Location"] == _timeline_url(RecordRef("customer", customer.record_id))


def test_search_says_plainly_when_the_id_is_wrong_or_unknown(lead_client):
    html = lead_client.get(reverse("record-search"), {"q": "10432"}).content.decode()
    assert "&#x27;10432&#x27; is not a record id; ids start with CUS-" in html
    html = lead_client.get(reverse("record-search"), {"q": "CUS-99999"}).content.decode()
    assert "No customer CUS-99999 in the records or the trail" in html


def test_search_lists_recently_changed_records_in_a_fixed_number_of_queries(lead_client, django_assert_num_queries):
    _history(CustomerFactory(), 2)
    with django_assert_num_queries(3 + SCOPE + BANNERS):  # session, user, changes
        small = lead_client.get(reverse("record-search"))
    _history(CustomerFactory(), 15)
    with django_assert_num_queries(3 + SCOPE + BANNERS):
        large = lead_client.get(reverse("record-search"))
    assert small.content.decode().count("Trace</a>") == 2
    assert large.content.decode().count("Trace</a>") == 17


def test_timeline_lists_every_event_of_the_record_newest_first(lead_client):
    customer = CustomerFactory()
    other = CustomerFactory()
    changes = _history(customer, 3)
    _history(other, 2)
    html = lead_client.get(_timeline_url(RecordRef("customer", customer.record_id))).content.decode()
    ids = _event_ids(html)
    assert len(ids) == 3
    assert ids == sorted(ids, reverse=True)
    assert f'href="{reverse("trace-change", args=[changes[-1].id])}"' in html
    assert customer.full_name in html


def test_timeline_pages_by_event_id_both_ways(lead_client):
    customer = CustomerFactory()
    _history(customer, 120)
    url = _timeline_url(RecordRef("customer", customer.record_id))
    first = lead_client.get(url).content.decode()
    first_ids = _event_ids(first)
    assert len(first_ids) == 50
    older = re.search(r'href="\?older_than=(\d+)"', first)
    assert older is not None and int(older.group(1)) == first_ids[-1]
    second_ids = _event_ids(lead_client.get(url, {"older_than": older.group(1)}).content.decode())
    third_html = lead_client.get(url, {"older_than": second_ids[-1]}).content.decode()
    third_ids = _event_ids(third_html)
    assert len(second_ids) == 50 and len(third_ids) == 20
    assert 'rel="next"' not in third_html
    assert sorted(first_ids + second_ids + third_ids, reverse=True) == first_ids + second_ids + third_ids
    assert len(set(first_ids + second_ids + third_ids)) == 120
    back = lead_client.get(url, {"newer_than": second_ids[0]}).content.decode()
    assert _event_ids(back) == first_ids


def test_timeline_runs_a_fixed_number_of_queries(lead_client, django_assert_num_queries):
    small, large = CustomerFactory(), CustomerFactory()
    _history(small, 2)
    _history(large, 60)
    at = (T0 + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    # session, user, events page, record; with a moment: changes since, last change, events either side
    for customer in (small, large):
        url = _timeline_url(RecordRef("customer", customer.record_id))
        with django_assert_num_queries(4 + SCOPE + BANNERS):
            lead_client.get(url)
        with django_assert_num_queries(8 + SCOPE + BANNERS):
            lead_client.get(url, {"at": at})


def test_timeline_filters_by_field_actor_workflow_prompt_and_time(lead_client):
    customer = CustomerFactory()
    ref = RecordRef("customer", customer.record_id)
    apply_update(ref, {"priority": "high"}, at=T0, workflow_slug="triage", prompt_version="triage@2")
    apply_update(
        ref, {"shipping_address": "12 Harbour Road"}, at=T0 + timedelta(hours=1), workflow_slug="address-updates"
    )
    audit_record(
        action="proposal.rejected",
        actor=Actor(kind="user", id="9", label="dana"),
        record_type="customer",
        record_id=customer.record_id,
        field="email",
        old_value="a@example.com",
        new_value="b@example.com",
        occurred_at=T0 + timedelta(hours=2),
    )
    url = _timeline_url(ref)

    def actions(**query: str) -> list[str]:
        html = lead_client.get(url, query).content.decode()
        return re.findall(r"<strong>([a-z_]+\.[a-z_]+)</strong>", html)

    assert actions() == ["proposal.rejected", "change.applied", "change.applied"]
    assert len(actions(field="shipping_address")) == 1
    assert actions(field="email") == ["proposal.rejected"]
    assert actions(actor="dana") == ["proposal.rejected"]
    assert len(actions(workflow="triage")) == 1
    assert len(actions(prompt_version="triage@2")) == 1
    assert actions(since="2026-11-27T14:30", until="2026-11-27T15:30") == ["change.applied"]


def test_timeline_refuses_bad_filters_naming_the_field(lead_client):
    customer = CustomerFactory()
    url = _timeline_url(RecordRef("customer", customer.record_id))
    response = lead_client.get(url, {"at": "yesterday-ish", "field": "shoe_size"})
    assert response.status_code == 200
    html = response.content.decode()
    assert error_messages(html) == [
        "Enter a date and time, such as 2026-11-27 14:00.",
        "Choose one of the fields of a customer.",
        "Fix the form above to see the timeline.",
    ]
    response = lead_client.get(url, {"since": "2026-11-27T15:00", "until": "2026-11-27T14:00"})
    assert "Must be later than From." in error_messages(response)


def test_state_at_shows_the_record_as_it_was_and_the_events_around_it(lead_client):
    customer = CustomerFactory(shipping_address="4 Old Mill Lane")
    ref = RecordRef("customer", customer.record_id)
    proposal = ProposalFactory(record_id=customer.record_id)
    apply_update(
        ref, {"shipping_address": "12 Harbour Road"}, at=T0 + timedelta(minutes=14, seconds=7), proposal=proposal
    )
    apply_update(ref, {"shipping_address": "1 Quay"}, at=T0 + timedelta(minutes=40))
    html = lead_client.get(_timeline_url(ref), {"at": "2026-11-27T14:15:00"}).content.decode()
    state = html.split('aria-label="State at"')[1].split("Around that moment")[0]
    assert "As it was at 2026-11-27 14:15:00.000" in state
    assert '<td data-field="shipping_address">12 Harbour Road</td>' in state
    assert "1 Quay <span" in state  # the value now, marked as changed since
    assert "1 change since then." in state
    around = html.split("Around that moment")[1].split('aria-label="Events"')[0]
    after_part, before_part = around.split("▲ after")
    assert "1 Quay" in after_part and "12 Harbour Road" in before_part


def test_times_are_shown_in_the_viewers_zone(lead_client):
    customer = CustomerFactory(shipping_address="4 Old Mill Lane")
    ref = RecordRef("customer", customer.record_id)
    apply_update(ref, {"shipping_address": "12 Harbour Road"}, at=T0 + timedelta(minutes=14, seconds=7))
    lead_client.cookies["tz"] = "America%2FNew_York"  # as the browser stores it
    html = lead_client.get(_timeline_url(ref), {"at": "2026-11-27T09:15:00"}).content.decode()
    assert "times in America/New_York" in html
    assert "2026-11-27 09:14:07.000" in html  # 14:14:07 UTC
    # the picker is read in the same zone: 09:15 in New York is after the change
    assert '<td data-field="shipping_address">12 Harbour Road</td>' in html


def test_an_order_timeline_and_an_unknown_record(lead_client):
    order = OrderFactory()
    response = lead_client.get(_timeline_url(RecordRef("order", order.record_id)))
    assert response.status_code == 200
    assert order.record_id in response.content.decode()
    assert lead_client.get(_timeline_url(RecordRef("customer", "CUS-404"))).status_code == 404
    assert lead_client.get(reverse("record-timeline", args=["spaceship", "X-1"])).status_code == 404


def test_htmx_filtering_swaps_only_the_timeline(lead_client):
    customer = CustomerFactory()
    _history(customer, 2)
    response = lead_client.get(
        _timeline_url(RecordRef("customer", customer.record_id)), {"field": "priority"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="timeline">')
    assert "<html" not in html
    assert len(_event_ids(html)) == 2


def test_a_search_for_something_that_is_no_record_id_names_each_prefix_in_plain_words(lead_client):
    response = lead_client.get(reverse("record-search"), {"q": "zzz"})
    assert error_messages(response) == [
        "'zzz' is not a record id; ids start with CUS-… for a customer, ORD-… for an order, T-… for a ticket."
    ]
