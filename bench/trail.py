"""Trail benchmark: the record timeline, state at T and search by record id on a large trail, and
the cost of the hash chain on append.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cs_h6 .venv/bin/python bench/trail.py

Builds two throwaway databases next to the one named: `<name>_trail_small` with 100,000 events over
5,000 customers and `<name>_trail_full` with 1,000,000 events over 50,000 customers, every customer
with the same history. The same requests then run against both, alternating one by one so that
whatever else the machine is doing weighs on both alike, and the p95 of each is printed with their
ratio. Then appends with and without the chain on the full trail, alternating in rounds. Both
databases are dropped at the end (unless --keep).

The bulk data is a real chain: each event's hash is computed in Python exactly as `audit_record`
does, and rows go in with COPY, in chain order. Every customer's row holds the values its last
Change left, and each Change holds the exact before/after, so state at T is rebuilt from real data.
"""

import argparse
import contextvars
import json
import os
import random
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENTS_PER_CHANGE = 2  # the approval and the applied change
ADDRESSES = ["4 Old Mill Lane", "12 Harbour Road", "1 Quay Street", "7 Rope Walk", "33 Shore Lane"]
PRIORITIES = ["low", "normal", "high", "urgent"]
APPROVERS = ["Dana Lee", "Sam Okafor", "Priya Shah", "Tom Reyes"]
PROMPTS = ["address-update@6", "address-update@7", "triage@3"]
SLOT = timedelta(milliseconds=5)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000, help="customers at full size")
    parser.add_argument("--small-records", type=int, default=5_000, help="customers in the smaller trail")
    parser.add_argument("--changes-per-record", type=int, default=10, help="each change is two events")
    parser.add_argument("--samples", type=int, default=300, help="requests per measurement")
    parser.add_argument("--appends", type=int, default=3000, help="appends per side of the chain comparison")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    return parser.parse_args()


def bench_databases() -> tuple[str, dict[str, str]]:
    """The server's maintenance URL, and the URL of each benchmark database by alias."""
    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit("bench/trail.py runs on PostgreSQL: set DATABASE_URL=postgres://user@host:port/name")
    base = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    return admin, {
        "default": urlunsplit(parts._replace(path=f"/{base}_trail_full")),
        "small": urlunsplit(parts._replace(path=f"/{base}_trail_small")),
    }


def recreate_database(admin_url: str, url: str, *, drop_only: bool = False) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


CURRENT_DATABASE: contextvars.ContextVar[str] = contextvars.ContextVar("bench_database", default="default")


class BenchRouter:
    """Sends every query to the database the measurement is about."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return CURRENT_DATABASE.get()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return CURRENT_DATABASE.get()

    def allow_relation(self, *args: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, *args: Any, **hints: Any) -> bool:
        return True


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed(action: Callable[[], Any], samples: int) -> list[float]:
    for _ in range(min(20, samples)):  # warm caches and connections
        action()
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        action()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


class Generator:
    """Customers, their Changes and the chained events of those Changes, in chain order."""

    def __init__(self, changes_per_record: int, start: datetime) -> None:
        from audit.services import GENESIS_HASH

        self.changes_per_record = changes_per_record
        self.head = GENESIS_HASH
        self.clock = start.replace(microsecond=start.microsecond // 1000 * 1000)  # the trail keeps milliseconds
        self.rng = random.Random(20261127)
        self.proposal_id = 0

    def history(self, index: int) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for each change of customer `index`, oldest first."""
        address, priority = ADDRESSES[index % len(ADDRESSES)], "normal"
        steps = []
        for k in range(self.changes_per_record):
            if k % 2 == 0:
                new_address = ADDRESSES[(index + k + 1) % len(ADDRESSES)] + f" ({k})"
                steps.append(("shipping_address", address, new_address))
                address = new_address
            else:
                new_priority = PRIORITIES[(index + k) % len(PRIORITIES)]
                if new_priority == priority:
                    new_priority = PRIORITIES[(PRIORITIES.index(priority) + 1) % len(PRIORITIES)]
                steps.append(("priority", priority, new_priority))
                priority = new_priority
        return steps

    def customers(self, first: int, last: int) -> Iterator[dict[str, Any]]:
        now = datetime.now(UTC)
        for index in range(first, last):
            values = {"shipping_address": ADDRESSES[index % len(ADDRESSES)], "priority": "normal"}
            for name, _, after in self.history(index):
                values[name] = after
            yield {
                "record_id": f"CUS-{100000 + index}",
                "version": 1 + self.changes_per_record,
                "created_at": now - timedelta(days=60),
                "updated_at": now,
                "full_name": f"Customer {index}",
                "email": f"customer{index}@example.com",
                "phone": "+44 7700 900123",
                "shipping_address": values["shipping_address"],
                "billing_status": "ok",
                "account_status": "active",
                "verified": False,
                "priority": values["priority"],
                "sentiment": "neutral",
                "tags": "[]",
                "support_notes": "",
                "internal_notes": "",
            }

    def changes_and_events(self, first: int, last: int) -> Iterator[tuple[dict[str, Any], list[Any]]]:
        """Round k of every customer, then round k+1: the trail interleaves records as real traffic does."""
        from audit.models import AuditEvent
        from audit.services import event_hash

        histories = {index: self.history(index) for index in range(first, last)}
        for k in range(self.changes_per_record):
            for index in range(first, last):
                name, before, after = histories[index][k]
                record_id = f"CUS-{100000 + index}"
                self.proposal_id += 1
                change_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
                approver = APPROVERS[index % len(APPROVERS)]
                prompt = PROMPTS[(index + k) % len(PROMPTS)]
                decided = self.clock
                applied = self.clock + timedelta(milliseconds=2)
                self.clock += SLOT
                common = {
                    "record_type": "customer",
                    "record_id": record_id,
                    "proposal_id": self.proposal_id,
                    "batch_id": 1 + self.proposal_id // 1000,
                    "workflow_slug": "address-updates",
                    "prompt_version": prompt,
                    "reason": "Customer asked for it in a ticket",
                }
                approval = AuditEvent(
                    occurred_at=decided,
                    actor_kind="user",
                    actor_id=str(1 + index % len(APPROVERS)),
                    actor_label=approver,
                    action="proposal.approved",
                    field="",
                    old_value=None,
                    new_value=None,
                    change_id=None,
                    model_name="gpt-x",
                    model_version="2026-10-01",
                    approver_label="",
                    decided_at=None,
                    details={},
                    **common,
                )
                applied_event = AuditEvent(
                    occurred_at=applied,
                    actor_kind="worker",
                    actor_id="celery@bench",
                    actor_label="celery@bench",
                    action="change.applied",
                    field=name,
                    old_value=before,
                    new_value=after,
                    change_id=change_id,
                    model_name="gpt-x",
                    model_version="2026-10-01",
                    approver_label=approver,
                    decided_at=decided,
                    details={},
                    **common,
                )
                rows = []
                for event in (approval, applied_event):
                    event.prev_hash = self.head
                    event.hash = event_hash(event)
                    self.head = event.hash
                    rows.append(event)
                change = {
                    "id": change_id,
                    "record_type": "customer",
                    "record_id": record_id,
                    "action": "update",
                    "before": json.dumps({name: before}),
                    "after": json.dumps({name: after}),
                    "version_before": 1 + k,
                    "version_after": 2 + k,
                    "proposal_id": self.proposal_id,
                    "batch_id": common["batch_id"],
                    "workflow_slug": "address-updates",
                    "prompt_version": prompt,
                    "reverts_id": None,
                    "merge_payload": None,
                    "applied_at": applied,
                    "applied_by": "celery@bench",
                }
                yield change, rows


def _json_cell(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _secondary_indexes(cursor: Any, table: str) -> tuple[list[str], list[str]]:
    """(drop, create) statements for a table's indexes and unique constraints, its primary key aside."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
        [table],
    )
    indexes = cursor.fetchall()
    drop = [f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for name, _ in constraints]
    drop += [f'DROP INDEX "{name}"' for name, _ in indexes]
    create = [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints]
    create += [definition for _, definition in indexes]
    return drop, create


def load(alias: str, generator: Generator, count: int) -> tuple[int, float]:
    """Fill database `alias` with `count` customers, their Changes and chained events: (events, seconds).

    Indexes are dropped for the load and built again after it, as any bulk load does; the rows and
    the chain are exactly what appending one by one would have produced.
    """
    from django.db import connections
    from django.db.models import JSONField

    from audit.models import AuditEvent
    from records.models import Change, Customer

    started = time.perf_counter()
    customer_columns = list(next(generator.customers(0, 1)))
    change_columns = [str(f.column) for f in Change._meta.concrete_fields]
    event_fields = [f for f in AuditEvent._meta.concrete_fields if f.attname != "id"]
    event_columns = [str(f.column) for f in event_fields]
    json_event_columns = {str(f.column) for f in event_fields if isinstance(f, JSONField)}
    events = 0
    with connections[alias].cursor() as wrapper:
        cursor = wrapper.cursor
        rebuild: list[str] = []
        for table in (Change._meta.db_table, "audit_auditevent"):
            drop, create = _secondary_indexes(cursor, table)
            for statement in drop:
                cursor.execute(statement)
            rebuild += create
        with cursor.copy(f"COPY {Customer._meta.db_table} ({', '.join(customer_columns)}) FROM STDIN") as copy:
            for row in generator.customers(0, count):
                copy.write_row([row[c] for c in customer_columns])
        change_sql = f"COPY {Change._meta.db_table} ({', '.join(change_columns)}) FROM STDIN"
        event_sql = f"COPY audit_auditevent ({', '.join(event_columns)}) FROM STDIN"
        pending_changes: list[dict[str, Any]] = []
        pending_events: list[Any] = []

        def flush() -> None:
            with cursor.copy(change_sql) as copy:
                for change in pending_changes:
                    copy.write_row([change[c] for c in change_columns])
            with cursor.copy(event_sql) as copy:
                for event in pending_events:
                    copy.write_row(
                        [
                            _json_cell(getattr(event, c)) if c in json_event_columns else getattr(event, c)
                            for c in event_columns
                        ]
                    )
            pending_changes.clear()
            pending_events.clear()

        for change, rows in generator.changes_and_events(0, count):
            pending_changes.append(change)
            pending_events.extend(rows)
            events += len(rows)
            if len(pending_events) >= 50_000:
                flush()
        flush()
        for statement in rebuild:
            cursor.execute(statement)
        cursor.execute("ANALYZE")
    return events, time.perf_counter() - started


MEASURES = (
    "timeline page",
    "timeline page with state at T",
    "state at T (selector)",
    "trail search by record id",
)


def measure(samples: int, sizes: dict[str, int]) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per request, by measure and database, the databases taking turns request by request."""
    from django.test import Client

    from records.models import Change
    from records.selectors import record_state_at
    from records.store import RecordRef

    rng = random.Random(1127)
    clients: dict[str, Client] = {}
    plans: dict[str, list[tuple[str, datetime]]] = {}
    for alias, count in sizes.items():
        token = CURRENT_DATABASE.set(alias)
        client = Client()
        client.force_login(_viewer())
        clients[alias] = client
        ids = [f"CUS-{100000 + rng.randrange(count)}" for _ in range(samples + 20)]
        moments = {
            record_id: list(Change.objects.filter(record_id=record_id).values_list("applied_at", flat=True))
            for record_id in set(ids)
        }
        plans[alias] = [(record_id, rng.choice(moments[record_id]) + timedelta(milliseconds=1)) for record_id in ids]
        CURRENT_DATABASE.reset(token)

    def timeline(alias: str, record_id: str, at: datetime) -> None:
        response = clients[alias].get(f"/records/customer/{record_id}/")
        assert response.status_code == 200 and record_id in response.content.decode()

    def timeline_at(alias: str, record_id: str, at: datetime) -> None:
        moment = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        response = clients[alias].get(f"/records/customer/{record_id}/", {"at": moment})
        assert response.status_code == 200 and "As it was at" in response.content.decode()

    def state_at(alias: str, record_id: str, at: datetime) -> None:
        record_state_at(ref=RecordRef("customer", record_id), at=at)

    def search(alias: str, record_id: str, at: datetime) -> None:
        response = clients[alias].get("/trail/", {"record": record_id})
        assert response.status_code == 200 and f'href="/records/customer/{record_id}/"' in response.content.decode()

    actions = dict(zip(MEASURES, (timeline, timeline_at, state_at, search), strict=True))
    results: dict[str, dict[str, list[float]]] = {name: {alias: [] for alias in sizes} for name in MEASURES}
    for name, action in actions.items():
        for n in range(samples + 20):
            order = list(sizes) if n % 2 == 0 else list(sizes)[::-1]
            for alias in order:
                record_id, at = plans[alias][n]
                token = CURRENT_DATABASE.set(alias)
                started = time.perf_counter()
                action(alias, record_id, at)
                elapsed = (time.perf_counter() - started) * 1000
                CURRENT_DATABASE.reset(token)
                if n >= 20:  # the first requests warm caches and connections
                    results[name][alias].append(elapsed)
    return results


def _viewer() -> Any:
    """An auditor, who sees every workflow's trail and records, as the pages measured show them."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    auditors, _ = Group.objects.get_or_create(name="auditors")
    auditors.permissions.add(Permission.objects.get(content_type__app_label="audit", codename="audit_trail"))
    user.groups.add(auditors)
    return user


def append_cost(count: int) -> tuple[list[float], list[float]]:
    """Per-append milliseconds with the chain (`audit_record`) and without it (the same row, plain insert),
    each append its own transaction, the two taking turns in rounds."""
    from django.db import transaction

    from audit.services import Actor, EventData, _build, audit_record

    actor = Actor.worker("celery@bench")

    def content(n: int) -> dict[str, Any]:
        return {
            "action": "change.applied",
            "actor": actor,
            "record_type": "customer",
            "record_id": f"CUS-{100000 + n % 1000}",
            "field": "priority",
            "old_value": "normal",
            "new_value": "high",
            "change_id": uuid.uuid4(),
            "proposal_id": 10_000_000 + n,
            "workflow_slug": "address-updates",
            "model_name": "gpt-x",
            "model_version": "2026-10-01",
            "prompt_version": "address-update@7",
            "approver_label": "Dana Lee",
            "reason": "bench",
        }

    def chained(n: int) -> None:
        audit_record(**content(n))

    def plain(n: int) -> None:
        event = _build(EventData(**content(n)))
        event.prev_hash = ""
        event.hash = uuid.uuid4().hex
        with transaction.atomic():
            event.save(force_insert=True)

    with_chain: list[float] = []
    without: list[float] = []
    rounds = 20
    for round_number in range(rounds):
        sides = [(chained, with_chain), (plain, without)]
        for action, sink in sides if round_number % 2 == 0 else sides[::-1]:
            for n in range(count // rounds):
                started = time.perf_counter()
                action(round_number * count + n)
                sink.append((time.perf_counter() - started) * 1000)
    return with_chain, without


def _line(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5):7.2f} ms  p95 {percentile(values, 0.95):7.2f} ms"


def main() -> None:
    args = parse_args()
    warnings.filterwarnings("ignore", message="No directory at")  # static files are not served here
    admin_url, urls = bench_databases()
    for url in urls.values():
        recreate_database(admin_url, url)
    os.environ["DATABASE_URL"] = urls["default"]
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.pop("DEBUG", None)
    import django
    from django.conf import settings

    settings.DATABASES["small"] = {**settings.DATABASES["default"], "NAME": urlsplit(urls["small"]).path.lstrip("/")}
    settings.DATABASE_ROUTERS = [BenchRouter()]
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from audit.services import audit_verify_chain

    sizes = {"small": args.small_records, "default": args.records}
    counts: dict[str, int] = {}
    labels = {"small": "small", "default": "full"}
    try:
        version = 0
        for alias in sizes:
            token = CURRENT_DATABASE.set(alias)
            call_command("migrate", database=alias, verbosity=0)
            CURRENT_DATABASE.reset(token)
        version = connection.cursor().connection.info.server_version
        print(
            f"Trail benchmark on PostgreSQL {version // 10000}.{version % 100}; load average {os.getloadavg()[0]:.1f}"
        )
        print(f"each customer: {args.changes_per_record} changes, {args.changes_per_record * EVENTS_PER_CHANGE} events")
        for alias, count in sizes.items():
            generator = Generator(args.changes_per_record, datetime.now(UTC) - timedelta(days=30))
            events, seconds = load(alias, generator, count)
            counts[alias] = events
            token = CURRENT_DATABASE.set(alias)
            started = time.perf_counter()
            checked, broken = audit_verify_chain()
            verified = time.perf_counter() - started
            CURRENT_DATABASE.reset(token)
            outcome = "no broken link" if broken is None else f"BROKEN at #{broken.event_id}"
            print(
                f"{labels[alias]:5} trail: {events:,} chained events over {count:,} customers,"
                f" loaded in {seconds:.0f} s; verify_audit: {checked:,} events, {outcome}, in {verified:.0f} s"
            )

        results = measure(args.samples, sizes)
        print(
            f"\n{args.samples} requests each, the two trails taking turns (target: full p95 <= 100 ms, ratio <= 1.3):"
        )
        for name in MEASURES:
            small, full = results[name]["small"], results[name]["default"]
            ratio = percentile(full, 0.95) / percentile(small, 0.95)
            verdict = "ok" if percentile(full, 0.95) <= 100 and ratio <= 1.3 else "MISSED"
            print(f"  {name}")
            print(f"    {counts['small']:>9,} events (baseline)  {_line(small)}")
            print(f"    {counts['default']:>9,} events             {_line(full)}   p95 ratio {ratio:4.2f}  {verdict}")

        with_chain, without = append_cost(args.appends)
        ratio = statistics.mean(with_chain) / statistics.mean(without)
        print(f"\nAppend on the full trail, {args.appends:,} each, one transaction per event (target ratio <= 1.3):")
        print(f"  without the chain (baseline)  mean {statistics.mean(without):6.3f} ms  {_line(without)}")
        print(f"  with the chain                mean {statistics.mean(with_chain):6.3f} ms  {_line(with_chain)}")
        median_ratio = percentile(with_chain, 0.5) / percentile(without, 0.5)
        print(
            f"  ratio of means {ratio:.2f}  {'ok' if ratio <= 1.3 else 'MISSED'}  (ratio of medians {median_ratio:.2f})"
        )
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        connections.close_all()
        for url in urls.values():
            if args.keep:
                print(f"kept {urlsplit(url).path.lstrip('/')}")
            else:
                recreate_database(admin_url, url, drop_only=True)
                print(f"dropped {urlsplit(url).path.lstrip('/')}")


if __name__ == "__main__":
    main()
