"""The built-in record store (Customer, Order, Ticket) and Change, the one way a record is written."""

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from records.catalogue import CUSTOMER, ORDER, PRIORITIES, TICKET


def _choices(record_type, field_name: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(value, value.replace("_", " ")) for value in record_type.field(field_name).choices]


class Record(models.Model):
    """What every built-in record has: the id staff use, a version every write bumps, soft removal."""

    record_id = models.CharField(max_length=64, unique=True)
    version = models.PositiveIntegerField(default=1)
    archived_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.record_id

    @property
    def is_hidden(self) -> bool:
        return self.archived_at is not None or self.deleted_at is not None


class Customer(Record):
    full_name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    shipping_address = models.TextField(blank=True)
    billing_status = models.CharField(max_length=20, choices=_choices(CUSTOMER, "billing_status"), default="ok")
    account_status = models.CharField(max_length=20, choices=_choices(CUSTOMER, "account_status"), default="active")
    verified = models.BooleanField(default=False)
    priority = models.CharField(max_length=10, choices=[(p, p) for p in PRIORITIES], default="normal")
    sentiment = models.CharField(max_length=10, choices=_choices(CUSTOMER, "sentiment"), default="neutral")
    tags = models.JSONField(default=list, blank=True)
    support_notes = models.TextField(blank=True)
    internal_notes = models.TextField(blank=True)


class Order(Record):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    order_number = models.CharField(max_length=40)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=20, choices=_choices(ORDER, "status"), default="placed")
    refund_status = models.CharField(max_length=20, choices=_choices(ORDER, "refund_status"), default="none")


class Ticket(Record):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    subject = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=_choices(TICKET, "status"), default="open")
    priority = models.CharField(max_length=10, choices=[(p, p) for p in PRIORITIES], default="normal")
    resolution_note = models.TextField(blank=True)


class ChangeAction(models.TextChoices):
    UPDATE = "update", "Update"
    ARCHIVE = "archive", "Archive"
    DELETE = "delete", "Delete"
    MERGE = "merge", "Merge"
    REVERT = "revert", "Revert"


class WrittenChangeManager(models.Manager["Change"]):
    """Changes that were written. A Change still in flight (see `Change.in_flight`) is an intent, not
    yet part of any record's history: nothing that reads the history sees it."""

    def get_queryset(self) -> models.QuerySet["Change"]:
        return super().get_queryset().filter(in_flight=False)


class Change(models.Model):
    """One applied write: the exact values before and after, and where it came from.

    A record's state at any moment can be rebuilt from its Changes. `proposal_id` and
    `batch_id` are plain ids (approvals sits above records); one Change per proposal is a
    database rule, so a proposal can never be applied twice.

    For a store outside Countersign's database the Change is stored first `in_flight` — the intent:
    the values before, the values to write, the version expected (`version_before`) and the one the
    write makes (`version_after`) — then the store is written, then the Change is marked written.
    `Change.objects` holds only written Changes; `Change.with_in_flight` holds intents too.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    record_type = models.CharField(max_length=32)
    record_id = models.CharField(max_length=64)
    action = models.CharField(max_length=20, choices=ChangeAction.choices)
    before = models.JSONField(encoder=DjangoJSONEncoder)
    after = models.JSONField(encoder=DjangoJSONEncoder)
    version_before = models.PositiveIntegerField()
    version_after = models.PositiveIntegerField()
    proposal_id = models.BigIntegerField(null=True, blank=True)
    batch_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    workflow_slug = models.CharField(max_length=64, blank=True, db_index=True)
    prompt_version = models.CharField(max_length=100, blank=True, db_index=True)
    reverts = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reverted_by")
    merge_payload = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    applied_at = models.DateTimeField(default=timezone.now, db_index=True)
    applied_by = models.CharField(max_length=200)
    in_flight = models.BooleanField(default=False, db_default=False)

    with_in_flight = models.Manager()
    objects = WrittenChangeManager()

    class Meta:
        ordering = ["-applied_at"]
        default_manager_name = "objects"
        base_manager_name = "with_in_flight"
        indexes = [
            models.Index(fields=["record_type", "record_id", "applied_at"], name="change_record_time"),
            models.Index(fields=["proposal_id"], condition=Q(in_flight=True), name="change_in_flight"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["proposal_id"],
                condition=Q(proposal_id__isnull=False) & ~Q(action="revert"),
                name="change_one_per_proposal",
            ),
            models.CheckConstraint(
                condition=Q(version_after__gt=models.F("version_before")), name="change_bumps_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.record_type}:{self.record_id} ({self.id})"


class StoreBinding(models.Model):
    """A record type bound to a system of record by the stores file (`manage.py load_stores`).

    `settings` are kept as the file wrote them: a `${VAR}` placeholder stays a placeholder and is
    read from the environment only when the store is built, so no secret is ever stored here.
    `digest` names the binding's configuration; a process rebuilds its store when it changes.
    A record type without a binding is on the built-in store.
    """

    record_type = models.CharField(max_length=32, unique=True)
    connector = models.CharField(max_length=32)
    settings = models.JSONField(default=dict)
    fields = models.JSONField(default=dict)  # catalogue field -> the system's own name
    side_effects = models.JSONField(default=dict)  # catalogue field -> what the system itself does on a write
    digest = models.CharField(max_length=64)
    configured_at = models.DateTimeField(default=timezone.now)
    checked_at = models.DateTimeField(null=True, blank=True)
    reachable = models.BooleanField(null=True, blank=True)
    check_message = models.TextField(blank=True)

    class Meta:
        ordering = ["record_type"]

    def __str__(self) -> str:
        return f"{self.record_type} on {self.connector}"


class RecordSighting(models.Model):
    """The last state Countersign saw or wrote of a record held by a store outside its database.

    A read that finds the record at another version, or with other values, learns that someone
    changed it outside Countersign since `seen_at` (see `records.store.observed`). Built-in records
    have none: every write to them goes through a Change.
    """

    record_type = models.CharField(max_length=32)
    record_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    values = models.JSONField(encoder=DjangoJSONEncoder)
    archived = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["record_type", "record_id"], name="sighting_one_per_record")]

    def __str__(self) -> str:
        return f"{self.record_type}:{self.record_id} v{self.version} at {self.seen_at.isoformat()}"


class StoreOutage(models.Model):
    """A record type whose store does not answer: since when, and the last error. Set by the first
    failure, removed by the next write that succeeds. While it is here, approved changes of that
    record type wait, and nothing is written to the store."""

    record_type = models.CharField(max_length=32, unique=True)
    store = models.CharField(max_length=100)
    since = models.DateTimeField(default=timezone.now)
    reason = models.TextField()
    last_error_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["since"]

    def __str__(self) -> str:
        return f"{self.store} ({self.record_type}) unreachable since {self.since}"


class ConnectorRecord(models.Model):
    """What Countersign knows of one record kept in a system of record that has no version of its own
    (BottleCRM): the system's id for it, and the last version and values Countersign wrote or saw.

    A read whose values differ from `values` is a new version: `version` moves up one and `values`
    become the ones read. `system` names the instance (its base URL), so two instances never share ids.
    """

    system = models.CharField(max_length=32)
    record_type = models.CharField(max_length=32)
    record_id = models.CharField(max_length=64)
    remote_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    fingerprint = models.CharField(max_length=64)
    values = models.JSONField(encoder=DjangoJSONEncoder, default=dict)
    archived_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["system", "record_type", "record_id"], name="connector_record_id"),
            models.UniqueConstraint(fields=["system", "record_type", "remote_id"], name="connector_remote_id"),
        ]

    def __str__(self) -> str:
        return f"{self.record_type}:{self.record_id} = {self.remote_id} at {self.system}"
