"""What a complaint says of when and what: as a person would, in their time zone, never exact."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from approvals.readiness.trace_complaint import complaint_text, when_phrase

NOW = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # Thursday 16:00 in London


@pytest.mark.parametrize(
    ("moment", "said"),
    [
        (NOW - timedelta(minutes=20), "in the last hour"),
        (datetime(2026, 12, 3, 9, 30, tzinfo=UTC), "this morning"),
        (datetime(2026, 12, 3, 13, 0, tzinfo=UTC), "this afternoon"),
        (datetime(2026, 12, 3, 2, 0, tzinfo=UTC), "early this morning"),
        (datetime(2026, 12, 2, 14, 14, tzinfo=UTC), "yesterday afternoon"),
        (datetime(2026, 12, 2, 19, 0, tzinfo=UTC), "yesterday evening"),
        (datetime(2026, 12, 2, 23, 0, tzinfo=UTC), "last night"),
        (datetime(2026, 12, 2, 3, 0, tzinfo=UTC), "early yesterday morning"),
        (datetime(2026, 12, 1, 18, 0, tzinfo=UTC), "on Tuesday evening"),
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), "on Saturday morning"),
        (datetime(2026, 11, 27, 23, 30, tzinfo=UTC), "late on Friday evening"),
        (datetime(2026, 11, 25, 10, 0, tzinfo=UTC), "about a week ago"),
        (datetime(2026, 11, 12, 10, 0, tzinfo=UTC), "about 3 weeks ago"),
        (datetime(2026, 9, 3, 10, 0, tzinfo=UTC), "about 3 months ago"),
    ],
)
def test_when_it_happened_in_words(moment, said):
    assert when_phrase(moment, now=NOW, zone=ZoneInfo("Europe/London")) == said


def test_the_day_is_the_viewers():
    moment = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)  # this morning in London, last night in Los Angeles

    assert when_phrase(moment, now=NOW, zone=ZoneInfo("Europe/London")) == "this morning"
    assert when_phrase(moment, now=NOW, zone=ZoneInfo("America/Los_Angeles")) == "last night"


def test_who_would_notice_says_it():
    customer = complaint_text(
        record_type="customer", record_id="CUS-10042", fields=["shipping_address", "phone"], when="this morning"
    )
    colleague = complaint_text(record_type="customer", record_id="CUS-10042", fields=["priority"], when="last night")
    order = complaint_text(record_type="order", record_id="ORD-60001", fields=["refund_status"], when="this morning")

    assert customer == "Customer CUS-10042 says their shipping address and phone changed this morning."
    assert colleague == "A colleague says the priority of customer CUS-10042 changed last night."
    assert order == "The customer on order ORD-60001 says its refund status changed this morning."
