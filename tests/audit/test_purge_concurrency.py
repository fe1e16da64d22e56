"""The purge alongside the writes that share its tables and the chain lock, on a real PostgreSQL."""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.models import Artifact, AuditEvent, Tombstone
from audit.retention import artifacts_purge_expired
from audit.services import Actor, audit_record, audit_verify_chain
from records.store import RecordRef, get_store
from tests.helpers.factories import ArtifactFactory, CustomerFactory, RetentionRuleFactory, WorkflowFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITES_PER_WRITER = 40
EXPIRED_AT_START = 400


def _run_all(workers: list) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(work):
        def run():
            try:
                work()
            except BaseException as error:  # noqa: BLE001 - every failure is reported by the test
                errors.append(error)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=guarded(work)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung: the purge blocked or deadlocked"
    return errors


def test_purge_runs_alongside_record_writes_and_new_artifacts_without_errors():
    workflow = WorkflowFactory(slug="address-updates")
    rule = RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(minutes=2))
    long_rule = RetentionRuleFactory(workflow=workflow, kind="output", bucket="live", window=timedelta(days=7))
    old = timezone.now() - timedelta(hours=1)
    Artifact.objects.bulk_create(
        [ArtifactFactory.build(rule=rule, created_at=old, expires_at=old) for _ in range(EXPIRED_AT_START)]
    )
    customers = [CustomerFactory() for _ in range(2)]
    writers_done = threading.Event()
    stored_by_writers: list[Artifact] = []

    def writer(customer):
        def write():
            ref = RecordRef("customer", customer.record_id)
            store = get_store(ref.record_type)
            for n in range(WRITES_PER_WRITER):
                with transaction.atomic():
                    state = store.fetch(ref, ["priority"], lock=True)
                    value = "high" if n % 2 == 0 else "normal"
                    store.write(ref, {"priority": value}, state.version)
                    audit_record(
                        action="change.applied",
                        actor=Actor.worker("apply"),
                        record_type="customer",
                        record_id=customer.record_id,
                        field="priority",
                        old_value=state.values["priority"],
                        new_value=value,
                    )
                    expired_now = ArtifactFactory.build(rule=rule, created_at=old, expires_at=old)
                    kept = ArtifactFactory.build(rule=long_rule)
                    Artifact.objects.bulk_create([expired_now, kept])
                    stored_by_writers.extend([expired_now, kept])

        return write

    def purger():
        while True:
            finished = writers_done.is_set()
            if not artifacts_purge_expired(batch_size=25).purged:
                time.sleep(0.01)
            if finished:
                return

    def writers_then_signal():
        errors = _run_all([writer(customer) for customer in customers])
        writers_done.set()
        if errors:
            raise errors[0]

    errors = _run_all([writers_then_signal, purger, purger])

    assert errors == []
    expired_total = EXPIRED_AT_START + WRITES_PER_WRITER * len(customers)
    assert not Artifact.objects.filter(expires_at__lte=timezone.now()).exists()
    assert Artifact.objects.filter(rule_id=long_rule.pk).count() == WRITES_PER_WRITER * len(customers)
    purged_ids = Counter(Tombstone.objects.values_list("artifact_id", flat=True))
    assert len(purged_ids) == expired_total
    assert max(purged_ids.values()) == 1, "an artifact was tombstoned twice"
    for customer in customers:
        customer.refresh_from_db()
        assert customer.version == 1 + WRITES_PER_WRITER
    assert AuditEvent.objects.filter(action="change.applied").count() == WRITES_PER_WRITER * len(customers)
    checked, broken = audit_verify_chain()
    assert broken is None
    assert checked == AuditEvent.objects.count()
