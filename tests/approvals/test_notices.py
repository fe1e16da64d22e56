"""The seam that records an event to tell people about: written with what caused it, once per key."""

import pytest
from django.db import transaction

from approvals.models import Notice
from approvals.notices import notice_record

pytestmark = pytest.mark.django_db


def test_a_notice_is_written_once_per_dedupe_key():
    first = notice_record(event="sla_breach", subject="Overdue", body="Proposal 4 waits 2h", dedupe_key="sla:4")
    again = notice_record(event="sla_breach", subject="Overdue", body="Proposal 4 waits 2h", dedupe_key="sla:4")
    assert first is not None and again is None
    assert Notice.objects.filter(event="sla_breach").count() == 1


def test_a_notice_goes_with_the_transaction_that_caused_it():
    with transaction.atomic():
        notice_record(event="stop_engaged", subject="Stopped", body="everything")
        transaction.set_rollback(True)
    assert not Notice.objects.exists()


def test_an_unknown_event_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown notice event 'lunch'"):
        notice_record(event="lunch", subject="", body="")
