"""The demo's past: four weeks of work, lived through the real services under a moved clock.

A fresh database has no past, yet the quality page (/workflows/<slug>/quality/) reads 30 days of
decisions and the queue tells how long a proposal has waited. So `seed_demo` loads its users, records,
workflows and pipelines four weeks back, then lives the weeks since in order: each step runs with the
clock moved to its moment (time-machine, not ticking) and goes through the same services a pipeline
and a person use: intake `proposal_submit`, the review's `proposal_approve` and `proposal_reject` with
the token of a screen shown to the reviewer, the worker's `proposals_apply`, an agent's edit by hand,
`undo_change`, the owner promoting a prompt version. Nothing is written behind their back: the
proposals, the records and their changes, and the hash-chained audit trail say the same times, and the
trail's ids run with time because the past is written first, before the demo's today.

address-updates (in canary all along) ran prompt address-update@5 for the first two weeks, rarely
rejected; address-update@6 replaced it and put the street number at the end of some addresses: it is
rejected about one time in three, a few of its changes were undone, and agents' edits by hand turned a
few approvals into conflicts. Reviewers are quick on some days and slow on others. duplicate-merge's
dedupe@2 archived closed and duplicate profiles through the month, rarely rejected, so dedupe@3
tripping the circuit breaker today (approvals/demo/noticing.py) stands out against it.

The hours before the seed come last: address updates and a refund note submitted then and not decided
yet, past their workflows' time to decide (`decide_within`), so the queue opens on them overdue.
"""

import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone

from approvals.applying.services import proposals_apply
from approvals.demo.proposals import REQUESTER, closed_profiles, merge_pairs
from approvals.demo.records import demo_records
from approvals.demo.undo import garbled
from approvals.intake.services import ProposalData, proposal_submit
from approvals.models import Proposal, ServiceAccount, Workflow
from approvals.readiness.prompts import prompt_version_promote
from approvals.review.services import proposal_approve, proposal_reject
from approvals.review.sight import SETTLE, proposal_shown, sight_token
from approvals.undo.services import undo_change
from audit.services import Actor
from records.models import Change
from records.services.changes import ChangeOrigin, change_update
from records.store import RecordState

LONDON = ZoneInfo("Europe/London")
# The demo's past begins this many days before today, at this hour (London): users, records, workflows.
PAST_DAYS = 29
PAST_BEGINS = time(7, 30)
# address-update@6 replaced @5 this many days ago.
SWITCH_DAYS = 14
OLD_VERSION, NEW_VERSION = "address-update@5", "address-update@6"
DEDUPE_VERSION = "dedupe@2"
# Every run id of the past and of the hours before the seed starts so.
DAILY_RUN = "daily-"
# The demo customers no other step of the seed touches: proposals.py takes 0-21, 100-144 and 160 (and
# the merge pairs and closed profiles it finds), undo.py 200-239, readiness.py 260-261, noticing.py 270-283.
FREE_CUSTOMERS = (range(22, 100), range(145, 160), range(161, 200), range(240, 260), range(262, 270), range(284, 300))
SEED = 20261108
STREETS = ["Harbour Road", "Castle Street", "Rose Street", "Canal Walk", "Station Road", "Park Avenue", "Mill Wynd"]
TOWNS = ["Leith", "Edinburgh", "Glasgow", "York", "Bristol", "Dundee"]


def _outcome(version: str, n: int) -> str:
    """What happened to the `n`th address update of `version`: @5 is rarely rejected, one of its changes
    was undone and one approval met an agent's edit; @6 is rejected two times in five, one of its
    changes in ten undone, one approval in fifteen met an edit."""
    if version == OLD_VERSION:
        return "reject" if n % 12 == 5 else "undo" if n == 20 else "conflict" if n == 33 else "approve"
    if n % 5 in (1, 3):
        return "reject"
    return "undo" if n % 10 == 4 else "conflict" if n % 15 == 7 else "approve"


# Rejection reasons as reviewers wrote them: the same reason in several hands, which the page groups.
REJECTIONS = {
    OLD_VERSION: [
        "Old address: the ticket is from last year",
        "old address: the ticket is from last year.",
        "That is the work address, not the home address",
        "Old address - the ticket is from last year",
    ],
    NEW_VERSION: [
        "Street number put at the end",
        "street number put at the end.",
        "Street number put at the end!",
        "Town missing from the address",
        "STREET NUMBER PUT AT THE END",
        "town missing from the address.",
        "Wrong customer: the ticket is from someone else",
    ],
}
UNDO_REASON = "The street number ended up at the end of the address; put back as it was"
# A reviewer's pace on a day, in minutes from submission to decision: quick some days, slow others.
PACES = (4, 7, 12, 20, 35, 60, 95, 140)
# Before the seed: address updates waiting this long (address-updates decides within 2 hours) and a
# refund note (within 15 minutes).
OVERDUE_ADDRESSES = (timedelta(hours=5), timedelta(hours=3, minutes=20), timedelta(hours=2, minutes=25))
OVERDUE_REFUND = timedelta(minutes=50)


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Everything inside happens at `moment`, the clock standing still."""
    with time_machine.travel(moment, tick=False):
        yield


def past_begins(today: date | None = None) -> datetime:
    """The moment the demo's past begins: PAST_DAYS before today, in the morning."""
    today = today or timezone.localdate()
    return datetime.combine(today - timedelta(days=PAST_DAYS), PAST_BEGINS, tzinfo=LONDON)


@dataclass(frozen=True)
class Past:
    decided: int  # proposals of the past, all decided
    overdue: int  # proposals of the hours before the seed, waiting past their workflow's time to decide


class _Timeline:
    """Steps to run in the order of their moments, each with the clock moved to it."""

    def __init__(self) -> None:
        self.steps: list[tuple[datetime, int, Callable[[], object]]] = []

    def at(self, moment: datetime, step: Callable[[], object]) -> None:
        self.steps.append((moment, len(self.steps), step))

    def live(self) -> None:
        for moment, _, step in sorted(self.steps, key=lambda s: (s[0], s[1])):
            with clock_at(moment):
                step()


class DemoReviewer:
    """A reviewer deciding on the screen that showed them the proposal a moment ago (the demo's past
    here, the circuit breaker's decisions in approvals/demo/noticing.py)."""

    def __init__(self, user: User) -> None:
        self.user = user

    def _token(self, proposal: Proposal) -> str:
        return sight_token(shown=proposal_shown(proposal), user=self.user, at=timezone.now() - SETTLE * 2)

    def approve(self, proposal: Proposal) -> None:
        proposal_approve(
            proposal=proposal,
            reviewer=self.user,
            expected_revision=proposal.revision,
            shown_token=self._token(proposal),
        )

    def reject(self, proposal: Proposal, reason: str) -> None:
        proposal_reject(
            proposal=proposal,
            reviewer=self.user,
            reason=reason,
            expected_revision=proposal.revision,
            shown_token=self._token(proposal),
        )


def _apply(proposal: Proposal) -> None:
    proposals_apply(proposal_ids=[proposal.pk], worker="demo-worker")


def _working_days(today: date) -> list[date]:
    """The weekdays of the past, oldest first, yesterday the last."""
    days = [today - timedelta(days=back) for back in range(PAST_DAYS - 1, 0, -1)]
    return [day for day in days if day.weekday() < 5]


def _on(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def _customers() -> tuple[list[RecordState], list[tuple[RecordState, str]]]:
    """The free customers: those for address updates, and the profiles dedupe@2 rightly archives with
    its reason (closed accounts, and the second of two profiles of one person)."""
    customers = demo_records("customer")
    taken = {c.ref.record_id for pair in merge_pairs(customers) for c in pair}
    taken |= {c.ref.record_id for c in closed_profiles(customers)}
    free = [customers[n] for span in FREE_CUSTOMERS for n in span if customers[n].ref.record_id not in taken]
    names = Counter(c.values["full_name"] for c in free)
    archived: list[tuple[RecordState, str]] = []
    first_of: dict[str, RecordState] = {}
    for customer in free:
        name = customer.values["full_name"]
        if customer.values["account_status"] == "closed":
            archived.append((customer, "Account closed more than two years ago, with no orders or tickets since"))
        elif names[name] > 1 and name in first_of:
            survivor = first_of[name]
            archived.append((customer, f"Duplicate of {survivor.ref.record_id}: same email and phone"))
        else:
            first_of.setdefault(name, customer)
    used = {c.ref.record_id for c, _ in archived} | {
        c.ref.record_id for c in first_of.values() if names[c.values["full_name"]] > 1
    }
    return [c for c in free if c.ref.record_id not in used], archived


def _address(n: int) -> str:
    return f"{3 + n % 90} {STREETS[n % len(STREETS)]}, {TOWNS[n % len(TOWNS)]}"


def _address_update(
    customer: RecordState, address: str, *, version: str, run_id: str, confidence: float
) -> ProposalData:
    """The pipeline's proposal to send everything to `address` from now on, as a ticket asked."""
    return ProposalData(
        record_type="customer",
        record_id=customer.ref.record_id,
        action="update",
        changes={"shipping_address": address},
        base={"shipping_address": customer.values["shipping_address"]},
        base_version=customer.version,
        reason=f"Customer wrote in a ticket: 'please send everything to {address} from now on'",
        confidence=confidence,
        model_name="gpt-x",
        model_version="2026-10-01",
        prompt_version=version,
        run_id=run_id,
        requested_by=REQUESTER,
    )


class _History:
    def __init__(self, accounts: dict[str, ServiceAccount], today: date) -> None:
        users = get_user_model().objects.in_bulk(["lead", "ops", "owner"], field_name="username")
        self.lead, self.ops, self.owner = DemoReviewer(users["lead"]), users["ops"], users["owner"]
        self.accounts = accounts
        self.today = today
        self.rng = random.Random(SEED)
        self.timeline = _Timeline()
        self.people, self.archived = _customers()
        self.decided = 0
        self.made: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

    def _next_customer(self) -> RecordState:
        return self.people.pop(0)

    def address_update(self, day: date, n: int, submitted: datetime, wait: timedelta) -> None:
        version = OLD_VERSION if day < self.today - timedelta(days=SWITCH_DAYS) else NEW_VERSION
        outcome = _outcome(version, self.made[version])
        self.made[version] += 1
        customer = self._next_customer()
        current = customer.values["shipping_address"]
        reason = ""
        if outcome == "reject":
            reason = REJECTIONS[version][self.rejected[version] % len(REJECTIONS[version])]
            self.rejected[version] += 1
        # What @6 got wrong: the number put at the end of the street, the town dropped.
        wrong = version == NEW_VERSION and (outcome == "undo" or "number" in reason.casefold() or "town" in reason)
        address = garbled(current) if wrong else _address(n)
        data = _address_update(
            customer,
            address,
            version=version,
            run_id=f"{DAILY_RUN}address-{day.isoformat()}",
            confidence=round(0.7 + self.rng.random() * 0.28, 2),
        )
        made: list[Proposal] = []
        decided = submitted + wait
        self.timeline.at(
            submitted, lambda: made.append(proposal_submit(account=self.accounts["address-updates"], data=data))
        )
        if outcome == "reject":
            self.timeline.at(decided, lambda: self.lead.reject(made[0], reason))
        else:
            if outcome == "conflict":
                # An agent on the phone with the customer set the address by hand while it waited.
                by_hand = f"Flat {1 + n % 6}, {address}"
                self.timeline.at(
                    submitted + wait / 2,
                    lambda: change_update(
                        ref=customer.ref,
                        values={"shipping_address": by_hand},
                        origin=ChangeOrigin(applied_by="agent", reason="Customer phoned with the new address"),
                        expected_version=customer.version,
                    ),
                )
            self.timeline.at(decided, lambda: self.lead.approve(made[0]))
            self.timeline.at(decided + timedelta(seconds=20), lambda: _apply(made[0]))
            if outcome == "undo":
                self.timeline.at(decided + timedelta(minutes=100), lambda: self._undo(made[0]))
        self.decided += 1

    def _undo(self, proposal: Proposal) -> None:
        change = Change.objects.get(proposal_id=proposal.pk)
        undo_change(change=change, actor=Actor.user(self.ops), user=self.ops, reason=UNDO_REASON)

    def dedupe(self, day: date, n: int, promote: bool) -> None:
        """One archive of dedupe@2's nightly run; every fifth one is wrong and rejected."""
        wrong = n % 5 == 3
        if wrong:
            customer = self._next_customer()
            reason = "Account closed more than two years ago, with no orders or tickets since"
        else:
            customer, reason = self.archived.pop(0)
        data = ProposalData(
            record_type="customer",
            record_id=customer.ref.record_id,
            action="archive",
            base={"full_name": customer.values["full_name"]},
            reason=reason,
            confidence=0.83,
            model_name="dedupe-x",
            model_version="2026-08-01",
            prompt_version=DEDUPE_VERSION,
            run_id=f"{DAILY_RUN}dedupe-{day.isoformat()}",
            requested_by=REQUESTER,
        )
        made: list[Proposal] = []
        submitted = _on(day, 7, 50)
        self.timeline.at(
            submitted, lambda: made.append(proposal_submit(account=self.accounts["duplicate-merge"], data=data))
        )
        if promote:
            # The workflow is live: a new prompt version waits for its owner to promote it.
            self.timeline.at(
                _on(day, 8, 5),
                lambda: prompt_version_promote(
                    workflow=Workflow.objects.get(slug="duplicate-merge"),
                    prompt_version=DEDUPE_VERSION,
                    user=self.owner,
                ),
            )
        decided = _on(day, 10, 10 + n % 40)
        if wrong:
            note = ("The account is open: it ordered last month", "the account is open - it ordered last month.")[n % 2]
            self.timeline.at(decided, lambda: self.lead.reject(made[0], note))
        else:
            self.timeline.at(decided, lambda: self.lead.approve(made[0]))
            self.timeline.at(decided + timedelta(seconds=20), lambda: _apply(made[0]))
        self.decided += 1

    def plan_past(self) -> None:
        n = 0
        for index, day in enumerate(_working_days(self.today)):
            pace = timedelta(minutes=self.rng.choice(PACES))
            submitted = _on(day, 8, 40)
            for _ in range(self.rng.randint(3, 5)):
                wait = pace * self.rng.uniform(0.6, 1.4)
                self.address_update(day, n, submitted, timedelta(seconds=round(wait.total_seconds())))
                submitted += timedelta(minutes=self.rng.randint(12, 45))
                n += 1
            if index % 2 == 0 and self.archived:
                self.dedupe(day, index, promote=index == 0)

    def plan_hours_before(self, now: datetime) -> int:
        """Proposals submitted hours ago and waiting still, past their workflow's time to decide."""
        for n, ago in enumerate(OVERDUE_ADDRESSES):
            customer = self._next_customer()
            address = _address(500 + n)
            data = _address_update(
                customer,
                address,
                version=NEW_VERSION,
                run_id=f"{DAILY_RUN}address-{self.today.isoformat()}",
                confidence=0.86,
            )
            self.timeline.at(now - ago, partial(proposal_submit, account=self.accounts["address-updates"], data=data))
        customer = self._next_customer()
        data = ProposalData(
            record_type="customer",
            record_id=customer.ref.record_id,
            action="update",
            changes={"support_notes": "Asked by email for a refund of a damaged kettle; photos attached."},
            reason="Summarises the customer's refund email for the next agent",
            confidence=0.9,
            model_name="gpt-x-mini",
            model_version="2026-09-15",
            prompt_version="refund-notes@3",
            run_id=f"{DAILY_RUN}refunds-{self.today.isoformat()}",
            requested_by=REQUESTER,
        )
        self.timeline.at(
            now - OVERDUE_REFUND, lambda: proposal_submit(account=self.accounts["refund-notes"], data=data)
        )
        return len(OVERDUE_ADDRESSES) + 1


def demo_history(*, accounts: dict[str, ServiceAccount]) -> Past:
    """Live the demo's past four weeks and the hours before the seed, in the order they happened. Call it after
    the users, records, workflows and pipelines were made at `past_begins()`, before today's work."""
    now = timezone.now()
    history = _History(accounts, timezone.localdate(now))
    history.plan_past()
    overdue = history.plan_hours_before(now)
    history.timeline.live()
    return Past(decided=history.decided, overdue=overdue)
