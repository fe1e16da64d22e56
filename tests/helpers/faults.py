"""Queue faults injected on purpose, and what became of every proposal they hit.

`bench/faults.py` runs each case many times and prints its line; `tests/approvals/faults/test_fault_suite.py`
runs each a few times in CI. A case is a function `case_<name>(rig, count) -> FaultLine`, registered
with `@fault_case`: it injects its fault `count` times against real worker processes (PostgreSQL and
Redis), lets the system recover, then counts, for every proposal it approved, the Changes and the
`change.applied` events, compares the record's value and version with what was approved, and counts
the follow-ups sent. Adding a case is one more such function.
"""

import itertools
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from tests.helpers.worker import CeleryWorker, engage_counting_writes, quiet_after, wait_until, writes_per_worker

# A case's own figures for the worker processes it starts: follow-ups are due as soon as their change is.
CASE_SETTINGS = {"COUNTERSIGN_FOLLOWUP_HOLD_SECONDS": "0"}
# Every this many proposals of a case also asks for an email to the customer once it is applied.
FOLLOW_UP_EVERY = 5


@dataclass(frozen=True)
class FaultLine:
    """One case's outcome: the fault, how many times it was injected, what should hold, what did."""

    fault: str
    injected: int
    expected: str
    observed: str
    ok: bool
    found: "Tally"
    recovered_seconds: float | None = None

    def __str__(self) -> str:
        recovered = "" if self.recovered_seconds is None else f"; recovered in {self.recovered_seconds:.1f} s"
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{verdict:<6} {self.fault} x{self.injected}: expected {self.expected}; observed {self.observed}{recovered}"
        )


@dataclass
class Rig:
    """What a case runs against: a way to start real worker processes on the database in use (the
    test database, or the bench's scratch one), the broker they share, and the mail folder their
    follow-ups write to."""

    start: Callable[..., CeleryWorker]
    broker: Any  # redis.Redis, the broker's database
    mail_dir: Path
    backlog: int = 5000  # approved proposals the held-backlog case holds behind a stop switch
    broker_down_seconds: float = 30  # how long the broker-down case keeps the broker away, each time
    workers: list[CeleryWorker] = field(default_factory=list)

    def start_worker(self, **options: Any) -> CeleryWorker:
        options["env"] = {**CASE_SETTINGS, **options.get("env", {})}
        worker = self.start(**options)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


Case = Callable[[Rig, int], FaultLine]
CASES: dict[str, Case] = {}


def fault_case(function: Case) -> Case:
    """Register a case under its name without the `case_` prefix."""
    CASES[function.__name__.removeprefix("case_")] = function
    return function


# What the broker holds ---------------------------------------------------------------------------


def apply_messages_queued(broker: Any) -> int:
    """Apply messages waiting in the broker, in whichever of its lists they wait (one per queue and
    priority, named as the deployment names its queues), taken by no worker yet."""
    from approvals.jobs import APPLY

    total = 0
    for key in broker.scan_iter(_type="list"):
        for raw in broker.lrange(key, 0, -1):
            try:
                headers = json.loads(raw).get("headers") or {}
            except (ValueError, AttributeError):
                continue
            total += headers.get("task") == APPLY
    return total


def apply_message_bound(backlog: int) -> int:
    """At most one message per chunk of the backlog: each proposal queued once."""
    from django.conf import settings

    return math.ceil(backlog / int(settings.COUNTERSIGN["APPLY_CHUNK_SIZE"]))


# Proposals, and what became of them --------------------------------------------------------------


def approved_with_follow_ups(count: int, **options: Any) -> list[int]:
    """`count` approved address changes (tests.helpers.approved), every FOLLOW_UP_EVERY-th also asking
    for an email to its customer once applied."""
    from django.db.models import Value
    from django.db.models.functions import Concat, Lower

    from approvals.models import Proposal
    from records.models import Customer
    from tests.helpers.approved import make_approved

    ids = make_approved(count, **options)
    emailed = ids[::FOLLOW_UP_EVERY]
    Proposal.objects.filter(pk__in=emailed).update(
        follow_ups=[{"kind": "email_customer", "params": {"template": "address-confirmed"}}]
    )
    records = Proposal.objects.filter(pk__in=emailed).values("record_id")
    Customer.objects.filter(record_id__in=records).update(email=Concat(Lower("record_id"), Value("@example.com")))
    return ids


@dataclass(frozen=True)
class Tally:
    """Per proposal, what was written: a proposal applied exactly once has one Change, one
    `change.applied` event, status applied, and its record holds the approved value at version 2."""

    proposals: int
    once: int
    lost: int
    doubled: int
    wrong_value: int
    follow_ups: int
    follow_ups_sent_once: int

    @property
    def exactly_once(self) -> bool:
        return (
            self.once == self.proposals
            and not (self.lost or self.doubled or self.wrong_value)
            and self.follow_ups_sent_once == self.follow_ups
        )

    def __str__(self) -> str:
        return (
            f"{self.once}/{self.proposals} applied once, {self.lost} lost, {self.doubled} doubled,"
            f" {self.wrong_value} wrong value, follow-ups sent once {self.follow_ups_sent_once}/{self.follow_ups}"
        )


def tally(ids: Iterable[int], *, mail_dir: Path) -> Tally:
    from approvals.models import FollowUp, FollowUpStatus, Proposal, ProposalStatus
    from audit.models import AuditEvent
    from records.models import Change, Customer

    ids = list(ids)
    changes = Counter(Change.objects.filter(proposal_id__in=ids).values_list("proposal_id", flat=True))
    events = Counter(
        AuditEvent.objects.filter(action="change.applied", proposal_id__in=ids).values_list("proposal_id", flat=True)
    )
    proposals = list(Proposal.objects.filter(pk__in=ids).values_list("pk", "status", "record_id", "changes"))
    records = {
        record_id: (address, version)
        for record_id, address, version in Customer.objects.filter(
            record_id__in=[record_id for _, _, record_id, _ in proposals]
        ).values_list("record_id", "shipping_address", "version")
    }
    once = lost = doubled = wrong = 0
    for pk, status, record_id, proposed in proposals:
        if changes[pk] == 0 and events[pk] == 0:
            lost += 1
        elif changes[pk] > 1 or events[pk] > 1:
            doubled += 1
        elif records.get(record_id) != (proposed["shipping_address"], 2):
            wrong += 1
        elif changes[pk] == events[pk] == 1 and status == ProposalStatus.APPLIED:
            once += 1
    asking = set(_asking_follow_ups(ids))
    asked = [(pk, record_id) for pk, _, record_id, _ in proposals if pk in asking]
    rows = Counter(FollowUp.objects.filter(proposal_id__in=ids).values_list("proposal_id", flat=True))
    sent_rows = Counter(
        FollowUp.objects.filter(proposal_id__in=ids, status=FollowUpStatus.SENT).values_list("proposal_id", flat=True)
    )
    sent_events = Counter(
        AuditEvent.objects.filter(action="followup.sent", proposal_id__in=ids).values_list("proposal_id", flat=True)
    )
    mails = _mails_by_recipient(mail_dir)
    sent_once = sum(
        1 for pk, record_id in asked if rows[pk] == sent_rows[pk] == sent_events[pk] == mails[_email(record_id)] == 1
    )
    return Tally(len(ids), once, lost, doubled, wrong, len(asked), sent_once)


def _asking_follow_ups(ids: list[int]) -> list[int]:
    from approvals.models import Proposal

    return list(Proposal.objects.filter(pk__in=ids).exclude(follow_ups=[]).values_list("pk", flat=True))


def _email(record_id: str) -> str:
    return f"{record_id.lower()}@example.com"


def _mails_by_recipient(mail_dir: Path) -> Counter:
    """How many emails the worker processes wrote to each address (the file backend, one file per
    connection, a message's `To:` line each)."""
    counts: Counter = Counter()
    if not mail_dir.exists():
        return counts
    for path in mail_dir.iterdir():
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("To: "):
                counts[line.removeprefix("To: ").strip()] += 1
    return counts


def _applied(ids: list[int]) -> int:
    from records.models import Change

    return Change.objects.filter(proposal_id__in=ids).count()


def _recovered(ids: list[int], *, since: float, timeout: float) -> float | None:
    """Wait until every proposal has its Change and every follow-up asked for is sent, then a second
    more for a second write to show: the seconds from `since`, or None when that did not come."""
    from approvals.models import FollowUp, FollowUpStatus

    asked = len(_asking_follow_ups(ids))

    def done() -> bool:
        sent = FollowUp.objects.filter(proposal_id__in=ids, status=FollowUpStatus.SENT).count()
        return _applied(ids) >= len(ids) and sent >= asked

    try:
        wait_until(done, timeout=timeout, interval=0.2, what="every proposal applied and its follow-ups sent")
    except AssertionError:
        return None
    seconds = time.monotonic() - since
    time.sleep(1.0)
    return seconds


def _progress(ids: list[int], past: int, *, timeout: float = 60) -> bool:
    """Wait until more than `past` proposals are applied; False if the batch stalls or ends first."""
    try:
        wait_until(lambda: _applied(ids) > past, timeout=timeout, interval=0.01)
    except AssertionError:
        return False
    return _applied(ids) < len(ids)


def _line(
    fault: str,
    *,
    count: int,
    injected: int,
    expected: str,
    found: Tally,
    recovered: float | None,
    notes: Iterable[str] = (),
    held: bool = True,
) -> FaultLine:
    """The case's line: ok when every proposal was applied exactly once, it recovered in time, the
    fault was injected as often as asked, and what the case checks besides (`held`) held."""
    observed = [str(found), *notes]
    if recovered is None:
        observed.append("did NOT recover in time")
    if injected < count:
        observed.append(f"injected only {injected} of {count} times (the batch ended first)")
    ok = found.exactly_once and recovered is not None and injected == count and held
    return FaultLine(fault, injected, expected, "; ".join(observed), ok, found, recovered)


def _timeout(ids: list[int]) -> float:
    return 60 + len(ids) / 20


EXACTLY_ONCE = (
    "each proposal applied exactly once (one Change, one change.applied, the approved value), follow-ups sent once"
)


@fault_case
def case_kill_9_mid_batch(rig: Rig, count: int) -> FaultLine:
    """`kill -9` of the worker and its pool while it applies a batch, `count` times, each time
    restarted (with beat, whose sweeper finds what the killed worker held unacknowledged)."""
    from approvals.jobs import apply_send_now

    step = 30
    ids = approved_with_follow_ups(max(200, 2 * step * (count + 1)))
    worker = rig.start_worker(concurrency=2, beat=True)
    apply_send_now(ids)
    injected, past, since = 0, 0, time.monotonic()
    for _ in range(count):
        if not _progress(ids, past + step):
            break
        worker.kill()
        past, since = _applied(ids), time.monotonic()
        if past >= len(ids):
            break
        injected += 1
        worker = rig.start_worker(concurrency=2, beat=True)
    recovered = _recovered(ids, since=since, timeout=_timeout(ids))
    found = tally(ids, mail_dir=rig.mail_dir)
    return _line(
        "kill -9 of a worker mid-batch",
        count=count,
        injected=injected,
        expected=EXACTLY_ONCE,
        found=found,
        recovered=recovered,
    )


@fault_case
def case_broker_flushed_mid_batch(rig: Rig, count: int) -> FaultLine:
    """FLUSHDB on the broker's Redis database while a batch is queued, `count` times: the queued
    messages are gone, and the sweeper (beat) queues what is still approved."""
    from approvals.jobs import APPLY, send

    step, chunk = 30, 10
    # Between flushes the worker finishes what it held and takes some of the sweeper's chunks at once.
    ids = approved_with_follow_ups(200 * count)
    rig.start_worker(concurrency=2, beat=True)
    # In small messages, more than the worker takes ahead of time: most are still waiting in Redis.
    for start in range(0, len(ids), chunk):
        send(APPLY, args=[ids[start : start + chunk]])
    injected, past, since, dropped = 0, 0, time.monotonic(), 0
    for _ in range(count):
        if not _progress(ids, past + step):
            break
        # The progress may be the work the worker held through the last flush: wait for the sweeper's
        # messages to be waiting again, so that each flush drops some.
        try:
            queued = wait_until(partial(apply_messages_queued, rig.broker), timeout=30, what="messages waiting")
        except AssertionError:
            break
        # FLUSHDB, never FLUSHALL: the Redis server may be shared; this database is the broker's whole world.
        rig.broker.flushdb()
        past, since = _applied(ids), time.monotonic()
        if past >= len(ids):
            break
        injected, dropped = injected + 1, dropped + queued
    recovered = _recovered(ids, since=since, timeout=_timeout(ids))
    found = tally(ids, mail_dir=rig.mail_dir)
    return _line(
        "Redis FLUSHDB mid-batch",
        count=count,
        injected=injected,
        expected=EXACTLY_ONCE,
        found=found,
        recovered=recovered,
        notes=[f"{dropped} apply messages dropped"],
    )


@fault_case
def case_stop_mid_batch(rig: Rig, count: int) -> FaultLine:
    """A batch's stop switch engaged while it is being applied, then released, `count` times. Counting
    the writes after the stop exactly needs PostgreSQL (`engage_counting_writes`)."""
    from approvals.jobs import apply_send_now
    from approvals.models import Proposal, ProposalStatus, StopScope
    from approvals.stops.services import stop_engage, stop_release
    from audit.services import Actor
    from tests.helpers.factories import BatchFactory, UserFactory

    step = 40
    size = max(200, 2 * step * (count + 1))
    ops = UserFactory(username="ops")
    batch = BatchFactory(expected_size=size)
    ids = approved_with_follow_ups(size, batch=batch)
    rig.start_worker(concurrency=2, beat=True)
    apply_send_now(ids)
    injected, past, since, worst, unheld = 0, 0, time.monotonic(), 0, 0
    for _ in range(count):
        if not _progress(ids, past + step):
            break
        switch, before = engage_counting_writes(
            lambda: stop_engage(
                scope=StopScope.BATCH,
                batch=batch,
                reason="fault suite: stop mid-batch",
                actor=Actor.user(ops),
                user=ops,
            ),
            batch_id=batch.pk,
        )
        past, _ = quiet_after(lambda: _applied(ids), for_seconds=1.0)
        after = writes_per_worker(batch.pk)
        worst = max([worst, *(after[process] - before.get(process, 0) for process in after)])
        waiting = Proposal.objects.filter(pk__in=ids, status=ProposalStatus.APPROVED).count()
        unheld += waiting != len(ids) - past
        stop_release(switch=switch, user=ops)
        since = time.monotonic()
        if past >= len(ids):
            break
        injected += 1
    recovered = _recovered(ids, since=since, timeout=_timeout(ids))
    found = tally(ids, mail_dir=rig.mail_dir)
    expected = f"at most the write in flight per worker process after each stop (<= 1); then {EXACTLY_ONCE}"
    notes = [f"at most {worst} written by one process after a stop"]
    if unheld:
        notes.append(f"{unheld} stops left proposals neither written nor waiting")
    return _line(
        "stop switch engaged mid-batch",
        count=count,
        injected=injected,
        expected=expected,
        found=found,
        recovered=recovered,
        notes=notes,
        held=worst <= 1 and not unheld,
    )


@fault_case
def case_backlog_held_by_stop(rig: Rig, count: int) -> FaultLine:
    """`rig.backlog` approved proposals, waiting longer than the stale window, held by a stop switch
    across `count` sweeps with a stale window passing among them; released, then `count` sweeps more
    before any worker runs. The apply messages are counted in the broker throughout."""
    from django.utils import timezone

    from approvals.applying.queueing import apply_sweep
    from approvals.models import Proposal, StopScope
    from approvals.stops.services import stop_engage, stop_release
    from audit.services import Actor
    from tests.helpers.factories import BatchFactory, UserFactory

    window = max(1.0, rig.backlog / 1000)  # long enough for the sweeps after the release to run within one
    backlog, bound = rig.backlog, apply_message_bound(rig.backlog)
    ops = UserFactory(username="ops")
    batch = BatchFactory(expected_size=backlog)
    ids = approved_with_follow_ups(backlog, batch=batch)
    Proposal.objects.filter(pk__in=ids).update(updated_at=timezone.now() - timedelta(hours=1))
    switch = stop_engage(
        scope=StopScope.BATCH, batch=batch, reason="fault suite: a held backlog", actor=Actor.user(ops)
    )
    held_peak = released_peak = 0
    for sweep in range(count):
        if sweep == count // 2:
            time.sleep(window + 0.5)  # a stale window passes while the switch holds them
        apply_sweep(stale_seconds=window)
        held_peak = max(held_peak, apply_messages_queued(rig.broker))
    stop_release(switch=switch, user=ops)
    since = time.monotonic()
    for _ in range(count):
        apply_sweep(stale_seconds=window)
        released_peak = max(released_peak, apply_messages_queued(rig.broker))
    rig.start_worker(concurrency=2, beat=True)
    recovered = _recovered(ids, since=since, timeout=_timeout(ids))
    found = tally(ids, mail_dir=rig.mail_dir)
    expected = f"no apply message while held; after release at most {bound} (one per proposal); then {EXACTLY_ONCE}"
    return _line(
        f"{backlog} approved held by a stop across sweeps",
        count=count,
        injected=count,
        expected=expected,
        found=found,
        recovered=recovered,
        notes=[f"{held_peak} apply messages queued while held, at most {released_peak} after release"],
        held=held_peak == 0 and released_peak <= bound,
    )


@fault_case
def case_broker_down_during_intake_and_approval(rig: Rig, count: int) -> FaultLine:
    """The broker unreachable for `rig.broker_down_seconds`, `count` times, while a pipeline submits
    proposals over the API (each with an Idempotency-Key, every third sent twice, as after a lost
    answer) and a person approves them. The web side publishes to a dead address (a closed port, then
    a black hole, in turn) and no worker runs: nothing reaches the broker. Then the broker is back
    (a worker with beat on it) and only the sweeper can find what was approved. The time to recover
    counts from the worker ready on the broker."""
    from django.test import Client
    from django.urls import reverse
    from guardian.shortcuts import assign_perm

    from approvals.models import Proposal, ProposalStatus
    from tests.approvals.faults.broker import black_hole, closed_port, web_broker_at
    from tests.helpers.factories import GroupFactory, UserFactory
    from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body
    from tests.helpers.sight import looked_at

    per_outage = 10
    leads = GroupFactory(name="fault-suite-leads")
    workflow = make_workflow(slug="fault-suite-intake", approver_group=leads)
    assign_perm("approvals.review_workflow", leads, workflow)
    assign_perm("approvals.view_workflow", leads, workflow)
    reviewer = UserFactory(username="fault-suite-lead")
    reviewer.groups.add(leads)
    pipeline = make_pipeline(workflow, name="fault-suite")
    # The bench runs on settings that allow only the deployment's own host names.
    pipeline.client = Client(HTTP_HOST="localhost")
    person = Client(HTTP_HOST="localhost")
    person.force_login(reviewer)

    ids: list[int] = []
    keys = answered = refused = replayed_apart = unqueued = 0
    worst: float | None = 0.0
    for outage in range(count):
        dead = black_hole(gives_up_after=rig.broker_down_seconds + 30) if outage % 2 else closed_port()
        submitted: list[int] = []
        with dead as url, web_broker_at(url), _logged("approvals.jobs") as lost_messages:
            down_since = time.monotonic()
            for record_id in _customers(per_outage):
                keys += 1
                body = proposal_body(
                    record_id=record_id,
                    changes={"shipping_address": f"{record_id.removeprefix('CUS-')} Harbour Road, Leith"},
                    follow_ups=_follow_up_for(record_id),
                )
                sends = 2 if keys % 3 == 0 else 1
                answers = [
                    pipeline.post("/api/v1/proposals", body, **{"Idempotency-Key": f"fault-suite-{keys}"})
                    for _ in range(sends)
                ]
                answered += len(answers)
                refused += sum(not 200 <= answer.status_code < 300 for answer in answers)
                if answers[0].status_code == 201:
                    given = {answer.json().get("id") for answer in answers}
                    replayed_apart += len(given) > 1
                    submitted.append(answers[0].json()["id"])
            for proposal in Proposal.objects.filter(pk__in=submitted):
                decided = person.post(
                    reverse("review-approve", args=[proposal.pk]),
                    looked_at(proposal, reviewer),
                    headers={"HX-Request": "true"},
                )
                answered += 1
                refused += not 200 <= decided.status_code < 300
            time.sleep(max(0.0, rig.broker_down_seconds - (time.monotonic() - down_since)))
        unqueued += len(lost_messages)
        ids += submitted
        approved = Proposal.objects.filter(pk__in=submitted, status=ProposalStatus.APPROVED).count()
        refused += len(submitted) - approved
        rig.start_worker(concurrency=2, beat=True)
        recovered = _recovered(submitted, since=time.monotonic(), timeout=_timeout(submitted))
        worst = None if worst is None or recovered is None else max(worst, recovered)
        rig.stop_workers()
    found = tally(ids, mail_dir=rig.mail_dir)
    duplicates = Proposal.objects.filter(workflow=workflow).count() - keys
    expected = (
        f"every request answered 2xx while the broker is down ({rig.broker_down_seconds:.0f} s each time),"
        f" one proposal per Idempotency-Key; then {EXACTLY_ONCE}"
    )
    notes = [
        f"{answered - refused}/{answered} requests answered 2xx",
        f"{duplicates} duplicate proposals, {replayed_apart} replays answered with another proposal",
        f"{unqueued} messages not queued, each logged",
    ]
    return _line(
        "broker down during intake and approval",
        count=count,
        injected=count,
        expected=expected,
        found=found,
        recovered=worst,
        notes=notes,
        held=refused == 0 and duplicates == 0 and replayed_apart == 0,
    )


_record_numbers = itertools.count(60000)


class _Kept(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _logged(name: str) -> Iterator[list[logging.LogRecord]]:
    """The warnings logger `name` gives meanwhile, kept here instead of printed: a case counts them."""
    handler = _Kept(logging.WARNING)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield handler.records
    finally:
        logger.propagate = propagate
        logger.removeHandler(handler)


def _customers(count: int) -> list[str]:
    """`count` customers at the old address, every FOLLOW_UP_EVERY-th with an email for its follow-up."""
    from records.models import Customer

    numbers = [next(_record_numbers) for _ in range(count)]
    Customer.objects.bulk_create(
        Customer(
            record_id=f"CUS-{n}",
            full_name=f"Customer {n}",
            shipping_address="4 Old Mill Lane, Leith",
            email=_email(f"CUS-{n}") if n % FOLLOW_UP_EVERY == 0 else "",
        )
        for n in numbers
    )
    return [f"CUS-{n}" for n in numbers]


def _follow_up_for(record_id: str) -> list[dict[str, Any]]:
    if int(record_id.removeprefix("CUS-")) % FOLLOW_UP_EVERY:
        return []
    return [{"kind": "email_customer", "params": {"template": "address-confirmed"}}]


def _waiting_besides(sessions: set[int]) -> set[int]:
    """The sessions waiting on a lock, besides `sessions`."""
    from tests.approvals.faults.holding import sessions_waiting

    return sessions_waiting() - sessions


def _all_applied(ids: list[int]) -> bool:
    return _applied(ids) == len(ids)


def _logged_times(worker: CeleryWorker, text: str, times: int) -> bool:
    return worker.log().count(text) >= times


def _has_status(pk: int, status: str) -> bool:
    from approvals.models import Proposal

    return Proposal.objects.filter(pk=pk, status=status).exists()


def _worst(worst: float | None, recovered: float | None) -> float | None:
    """The longest recovery of a case's injections, or None once one did not come."""
    return None if worst is None or recovered is None else max(worst, recovered)


@fault_case
def case_database_backend_terminated_mid_write(rig: Rig, count: int) -> FaultLine:
    """`pg_terminate_backend` of the worker's session in the middle of its write, `count` times (as a
    database restart or a failover drops it): each time a chunk's write waits on the audit trail,
    which another transaction has appended to and not committed, and its session is ended there.
    The write is tried on a new connection, which waits on the trail again; then the trail is let go."""
    import psycopg
    from django.db import connection

    from approvals.jobs import apply_send_now
    from approvals.models import Proposal
    from tests.approvals.faults.holding import sessions_waiting, trail_held
    from tests.helpers.worker import database_url

    chunk = 3
    rig.start_worker(concurrency=1, beat=True, env={"COUNTERSIGN_DB_LOCK_TIMEOUT_MS": "60000"})
    ids: list[int] = []
    injected = waited_again = 0
    worst: float | None = 0.0
    for _ in range(count):
        part = approved_with_follow_ups(chunk)
        ids += part
        with trail_held():
            apply_send_now(part)
            try:
                dropped = wait_until(sessions_waiting, timeout=30, what="the write to wait on the trail")
            except AssertionError:
                break
            with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(dropped)])
            injected += 1
            try:
                wait_until(partial(_waiting_besides, dropped), timeout=30, what="the write on a new connection")
                waited_again += 1
            except AssertionError:
                pass
        worst = _worst(worst, _recovered(part, since=time.monotonic(), timeout=_timeout(part)))
    found = tally(ids, mail_dir=rig.mail_dir)
    counted = Proposal.objects.filter(pk__in=ids, apply_attempts__gt=0).count()
    expected = f"the write tried again on a new connection, no attempt counted; then {EXACTLY_ONCE}"
    notes = [
        f"{waited_again}/{injected} writes back on a new connection while the trail was held",
        f"{counted} proposals with an attempt counted",
    ]
    return _line(
        "pg_terminate_backend of the worker's session mid-write",
        count=count,
        injected=injected,
        expected=expected,
        found=found,
        recovered=worst,
        notes=notes,
        held=waited_again == injected and counted == 0,
    )


LOCK_TIMEOUT_MS = 300


@fault_case
def case_row_lock_past_lock_timeout(rig: Rig, count: int) -> FaultLine:
    """A record row held FOR UPDATE by another session past the worker's lock_timeout (LOCK_TIMEOUT_MS),
    `count` times, each time the second of a chunk's records: its write is deferred, uncounted, and
    tried again while the worker applies the rest of the chunk; once the row is let go it is applied.
    The time to recover counts from the release."""
    from approvals.jobs import apply_send_now
    from approvals.models import Proposal, ProposalStatus
    from records.models import Change, Customer
    from tests.approvals.faults.holding import held_row

    chunk = 4
    worker = rig.start_worker(concurrency=1, beat=True, env={"COUNTERSIGN_DB_LOCK_TIMEOUT_MS": str(LOCK_TIMEOUT_MS)})
    ids: list[int] = []
    injected = waited_out = 0
    worst: float | None = 0.0
    for _ in range(count):
        part = approved_with_follow_ups(chunk)
        ids += part
        locked, others = part[1], [pk for pk in part if pk != part[1]]
        holder = held_row(Customer._meta.db_table, "record_id", Proposal.objects.get(pk=locked).record_id)
        try:
            deferred = worker.log().count("'deferred': 1")
            apply_send_now(part)
            injected += 1
            try:
                wait_until(partial(_all_applied, others), timeout=30, what="the rest of the chunk")
                # Tried again, at least twice, while the row is held.
                wait_until(partial(_logged_times, worker, "'deferred': 1", deferred + 2), timeout=30)
            except AssertionError:
                pass
            else:
                waiting = Proposal.objects.get(pk=locked)
                unwritten = not Change.objects.filter(proposal_id=locked).exists()
                waited_out += unwritten and (waiting.status, waiting.apply_attempts) == (ProposalStatus.APPROVED, 0)
        finally:
            holder.rollback()
            holder.close()
        worst = _worst(worst, _recovered(part, since=time.monotonic(), timeout=_timeout(part)))
    found = tally(ids, mail_dir=rig.mail_dir)
    counted = Proposal.objects.filter(pk__in=ids, apply_attempts__gt=0).count()
    expected = (
        f"while held, the rest of its chunk applied and the held one deferred (approved, unwritten, uncounted);"
        f" then {EXACTLY_ONCE}"
    )
    notes = [
        f"{waited_out}/{injected} held proposals waited, the rest of their chunk applied",
        f"{counted} proposals with an attempt counted",
    ]
    return _line(
        f"a record row held past the worker's lock_timeout ({LOCK_TIMEOUT_MS} ms)",
        count=count,
        injected=injected,
        expected=expected,
        found=found,
        recovered=worst,
        notes=notes,
        held=waited_out == injected and counted == 0,
    )


POISON_MAX_ATTEMPTS = 3


@fault_case
def case_poison_proposal_kills_its_worker(rig: Rig, count: int) -> FaultLine:
    """A proposal whose write ends its worker process (tests.approvals.faults.poisoned: `os._exit`, as
    a segfault or the out-of-memory killer would), second in a chunk of healthy ones, `count` times.
    Each death counts an attempt; after POISON_MAX_ATTEMPTS it is given up, `failed` with the reason,
    and the rest of its chunk is applied. The time to recover counts from the chunk sent."""
    from approvals.jobs import apply_send_now
    from approvals.models import Proposal, ProposalStatus
    from audit.models import AuditEvent
    from records.models import Change, Customer
    from tests.approvals.faults.poisoned import POISON
    from tests.helpers.approved import make_approved

    healthy_per_chunk = 3
    worker = rig.start_worker(
        concurrency=1,
        beat=True,
        settings_module="tests.approvals.faults.poisoned_settings",
        env={"COUNTERSIGN_APPLY_MAX_ATTEMPTS": str(POISON_MAX_ATTEMPTS)},
    )
    ids: list[int] = []
    poisons: list[int] = []
    worst: float | None = 0.0
    for _ in range(count):
        healthy = approved_with_follow_ups(healthy_per_chunk)
        [poison] = make_approved(1)
        Proposal.objects.filter(pk=poison).update(changes={"shipping_address": POISON})
        ids, poisons = ids + healthy, [*poisons, poison]
        since = time.monotonic()
        apply_send_now([healthy[0], poison, *healthy[1:]])
        try:
            wait_until(
                partial(_has_status, poison, ProposalStatus.FAILED),
                timeout=90,
                interval=0.2,
                what="the poison to be given up",
            )
        except AssertionError:
            worst = None
            continue
        worst = _worst(worst, _recovered(healthy, since=since, timeout=_timeout(healthy)))
    found = tally(ids, mail_dir=rig.mail_dir)
    reason = f"given up after {POISON_MAX_ATTEMPTS} attempts: the worker applying it stopped before it finished"
    given_up = 0
    for proposal in Proposal.objects.filter(pk__in=poisons):
        customer = Customer.objects.get(record_id=proposal.record_id)
        failed = AuditEvent.objects.filter(action="proposal.failed", proposal_id=proposal.pk)
        given_up += (
            proposal.status == ProposalStatus.FAILED
            and proposal.apply_attempts == POISON_MAX_ATTEMPTS
            and reason in proposal.last_error
            and failed.count() == 1
            and failed.get().reason == proposal.last_error
            and (customer.shipping_address, customer.version) == ("4 Old Mill Lane, Leith", 1)
            and not Change.objects.filter(proposal_id=proposal.pk).exists()
        )
    deaths = worker.log().count("exited with 'exitcode 70'")
    expected = (
        f"the poison failed after {POISON_MAX_ATTEMPTS} attempts, each ending its process, with the reason, its"
        f" record untouched; the rest of its chunk: {EXACTLY_ONCE}"
    )
    notes = [f"{given_up}/{len(poisons)} poisons given up as expected", f"{deaths} worker processes ended"]
    return _line(
        "a poison proposal that ends its worker process",
        count=count,
        injected=len(poisons),
        expected=expected,
        found=found,
        recovered=worst,
        notes=notes,
        held=given_up == len(poisons) and deaths >= POISON_MAX_ATTEMPTS * len(poisons),
    )
