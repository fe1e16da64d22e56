"""A workflow's retention rules, and the changes to them that wait for their second owner.

A rule is changed in two steps by two people: one owner proposes (a pending `RetentionChange`), the
other countersigns, and only then does the rule change. Both ways in come here: the retention page
(through `approvals.retention.services`) and the workflow file (through `loading`). The functions
run inside the caller's transaction, with the workflow locked, and hand back the trail's events.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import RetentionChange, RetentionChangeStatus, RetentionRule, Workflow
from approvals.workflows.rights import (
    retention_countersign_refusal,
    retention_countersigner,
    retention_proposal_refusal,
)
from audit.retention import artifacts_shorten_for_rule
from audit.services import Actor, EventData, user_label
from core.errors import InvalidTransition, NotAllowed, ValidationFailed
from core.timeutils import format_window

Key = tuple[str, str]
Problem = Callable[[str], None]  # notes what is wrong with the file's entry for one rule


def shown_window(window: timedelta | None) -> str:
    """A window as the pages and the trail name it: 7d, 0d for never stored, or no rule."""
    return "no rule" if window is None else format_window(window)


def retention_waiting_for(*, workflow: Workflow, proposed_by: Any) -> str:
    """Who a change `proposed_by` proposed waits for, in words."""
    countersigner = retention_countersigner(workflow=workflow, proposed_by=proposed_by)
    if countersigner is not None:
        return user_label(countersigner)
    if not workflow.retention_co_owner_id:
        return "a second owner to be named (retention_co_owner in the workflow file)"
    return "nobody: its proposer no longer owns the rules, so it can only be withdrawn"


def _trail_value(window: timedelta | None, owner: Any) -> dict[str, str] | None:
    return None if window is None else RetentionRule.trail_value(window=window, owner=owner)


@dataclass(frozen=True)
class Written:
    """What writing one rule did."""

    rule_id: int | None
    after: dict[str, str] | None  # the rule as the trail shows it, None when it went
    shortened: int  # stored artifacts whose expiry came closer
    existing_artifacts: str


def retention_rule_write(
    *, workflow: Workflow, kind: str, bucket: str, rule: RetentionRule | None, window: timedelta | None
) -> Written:
    """Make the rule for (kind, bucket) keep artifacts for `window` (None: the rule goes). What is
    already stored follows a shorter window at once, and goes at the next purge when the rule goes;
    a longer window applies only to what is stored from now on."""
    owner = workflow.rules_owner
    if rule is not None and window is None:
        # Without a rule nothing of this kind may be kept: what is stored goes at the next purge.
        shortened = artifacts_shorten_for_rule(rule_id=rule.pk, window=timedelta(0))
        rule_id = rule.pk
        rule.delete()
        return Written(rule_id, None, shortened, "go at the next purge")
    if rule is not None and window is not None:
        shorter = window < rule.window
        shortened = artifacts_shorten_for_rule(rule_id=rule.pk, window=window) if shorter else 0
        rule.window, rule.owner, rule.updated_at = window, owner, timezone.now()
        rule.save(update_fields=["window", "owner", "updated_at"])
        existing = "follow the shorter window" if shorter else "keep their expiry"
        return Written(rule.pk, _trail_value(window, owner), shortened, existing)
    if window is None:
        return Written(None, None, 0, "none")
    created = RetentionRule.objects.create(workflow=workflow, kind=kind, bucket=bucket, window=window, owner=owner)
    return Written(created.pk, _trail_value(window, owner), 0, "none")


def retention_rule_written_event(
    *,
    workflow: Workflow,
    kind: str,
    bucket: str,
    before: dict[str, str] | None,
    written: Written,
    actor: Actor,
    **details: Any,
) -> EventData:
    """The `retention.changed` event of a rule `retention_rule_write` just wrote."""
    return EventData(
        action="retention.changed",
        actor=actor,
        workflow_slug=workflow.slug,
        field=f"{kind}/{bucket}",
        old_value=before,
        new_value=written.after,
        details={
            "kind": kind,
            "bucket": bucket,
            "rule_id": written.rule_id,
            "artifacts_shortened": written.shortened,
            "existing_artifacts": written.existing_artifacts,
            **details,
        },
    )


def retention_change_open(
    *,
    workflow: Workflow,
    kind: str,
    bucket: str,
    rule: RetentionRule | None,
    window: timedelta | None,
    proposed_by: Any,
    source: str,
    actor: Actor,
) -> tuple[RetentionChange, EventData]:
    """Record that `proposed_by` proposes the rule for (kind, bucket) keep `window` (None: the rule
    goes). Nothing changes until the other owner countersigns. One pending change per rule."""
    refusal = retention_proposal_refusal(user=proposed_by, workflow=workflow)
    if refusal:
        raise NotAllowed(refusal)
    before = rule.window if rule is not None else None
    if before == window:
        raise ValidationFailed([("window", f"the rule already keeps artifacts for {shown_window(window)}")])
    try:
        with transaction.atomic():
            change = RetentionChange.objects.create(
                workflow=workflow,
                kind=kind,
                bucket=bucket,
                window_before=before,
                window_after=window,
                proposed_by=proposed_by,
                source=source,
            )
    except IntegrityError:
        raise InvalidTransition(
            f"a change to the {kind}/{bucket} rule is already waiting for its second owner: "
            "countersign, reject or withdraw it first"
        ) from None
    waits_for = retention_waiting_for(workflow=workflow, proposed_by=proposed_by)
    event = EventData(
        action="retention.change_proposed",
        actor=actor,
        workflow_slug=workflow.slug,
        field=f"{kind}/{bucket}",
        old_value=_trail_value(before, rule.owner if rule else None),
        new_value=_trail_value(window, workflow.rules_owner),
        details={
            "change_id": change.pk,
            "kind": kind,
            "bucket": bucket,
            "source": source,
            "proposed_by": proposed_by.get_username(),
            "waits_for": waits_for,
        },
    )
    return change, event


def retention_change_carry_out(
    *, change: RetentionChange, rule: RetentionRule | None, countersigned_by: Any, actor: Actor
) -> EventData:
    """Countersign a pending `change` (locked by the caller, with its workflow and rule) and carry it
    out. Refused when `countersigned_by` is not the other owner, or the rule moved since."""
    workflow = change.workflow
    if change.status != RetentionChangeStatus.PENDING:
        raise InvalidTransition(f"this change was already {change.get_status_display().lower()}")
    refusal = retention_countersign_refusal(user=countersigned_by, workflow=workflow, proposed_by=change.proposed_by)
    if refusal:
        raise NotAllowed(refusal)
    now_window = rule.window if rule is not None else None
    if now_window != change.window_before:
        raise InvalidTransition(
            f"the {change.kind}/{change.bucket} rule changed since this was proposed "
            f"(it keeps {shown_window(now_window)} now): withdraw it and propose again"
        )
    before = _trail_value(now_window, rule.owner if rule else None)
    written = retention_rule_write(
        workflow=workflow, kind=change.kind, bucket=change.bucket, rule=rule, window=change.window_after
    )
    now = timezone.now()
    change.status = RetentionChangeStatus.APPLIED
    change.countersigned_by = countersigned_by
    change.countersigned_at = now
    change.save(update_fields=["status", "countersigned_by", "countersigned_at"])
    event = retention_rule_written_event(
        workflow=workflow,
        kind=change.kind,
        bucket=change.bucket,
        before=before,
        written=written,
        actor=actor,
        change_id=change.pk,
        source=change.source,
        proposed_by=change.proposed_by.get_username(),
        proposed_at=change.proposed_at,
        countersigned_by=countersigned_by.get_username(),
    )
    event.approver_label = user_label(countersigned_by)
    event.decided_at = now
    return event


def retention_change_close(*, change: RetentionChange, actor: Actor, rejected_by: Any | None) -> EventData:
    """Withdraw a pending `change` (locked by the caller): its proposer's or the file's withdrawal,
    or the other owner's rejection when `rejected_by` is given. The rule stays as it is."""
    if change.status != RetentionChangeStatus.PENDING:
        raise InvalidTransition(f"this change was already {change.get_status_display().lower()}")
    change.status = RetentionChangeStatus.WITHDRAWN
    change.save(update_fields=["status"])
    return EventData(
        action="retention.change_rejected" if rejected_by is not None else "retention.change_withdrawn",
        actor=actor,
        workflow_slug=change.workflow.slug,
        field=f"{change.kind}/{change.bucket}",
        decided_at=timezone.now(),
        details={
            "change_id": change.pk,
            "kind": change.kind,
            "bucket": change.bucket,
            "source": change.source,
            "proposed_by": change.proposed_by.get_username(),
            "proposed_window": shown_window(change.window_after),
            "window_in_effect": shown_window(change.window_before),
            **({"rejected_by": user_label(rejected_by)} if rejected_by is not None else {}),
        },
    )


@dataclass
class RetentionLoad:
    """What loading the file did to one workflow's retention rules."""

    events: list[EventData] = field(default_factory=list)
    # One line per rule whose change from the file waits for its second owner.
    waiting: list[str] = field(default_factory=list)
    wrote: bool = False


@dataclass(frozen=True)
class Loader:
    """Who loads the file (`--user`), who countersigned its retention changes (`--countersigned-by`),
    and the actor the trail names for the load."""

    actor: Actor
    user: Any | None = None
    countersigned_by: Any | None = None


def _file_change(
    workflow: Workflow,
    key: Key,
    rule: RetentionRule | None,
    window: timedelta | None,
    loader: Loader,
    done: RetentionLoad,
    problem: Problem,
) -> None:
    """Propose (or, countersigned, carry out) the change the file asks for one rule."""
    if loader.user is None:
        problem(
            "name who loads the file with --user: a change to a retention rule is proposed by one of its "
            "owners and waits for the other (or name the other with --countersigned-by)"
        )
        return
    refusal = retention_proposal_refusal(user=loader.user, workflow=workflow)
    if refusal:
        problem(f"--user {loader.user.get_username()}: {refusal}")
        return
    if loader.countersigned_by is not None:
        refusal = retention_countersign_refusal(
            user=loader.countersigned_by, workflow=workflow, proposed_by=loader.user
        )
        if refusal:
            problem(f"--countersigned-by {loader.countersigned_by.get_username()}: {refusal}")
            return
    change, event = retention_change_open(
        workflow=workflow,
        kind=key[0],
        bucket=key[1],
        rule=rule,
        window=window,
        proposed_by=loader.user,
        source="file",
        actor=loader.actor,
    )
    done.wrote = True
    if loader.countersigned_by is None:
        done.events.append(event)
        done.waiting.append(_waiting_line(workflow, change))
        return
    done.events.append(
        retention_change_carry_out(
            change=change, rule=rule, countersigned_by=loader.countersigned_by, actor=loader.actor
        )
    )


def _waiting_line(workflow: Workflow, change: RetentionChange) -> str:
    return (
        f"{workflow.slug} {change.kind}/{change.bucket}: {shown_window(change.window_before)} → "
        f"{shown_window(change.window_after)}, proposed by {change.proposed_by.get_username()}, waiting for "
        f"{retention_waiting_for(workflow=workflow, proposed_by=change.proposed_by)}"
    )


def retention_rules_load(
    *, workflow: Workflow, wanted: dict[Key, timedelta], created: bool, loader: Loader
) -> RetentionLoad:
    """Bring `workflow`'s retention rules to what its file says, under the two-owner rule.

    A brand-new workflow's rules are written as loaded: nothing was kept under it before. For a
    workflow that exists, each rule the file changes (its window, a new rule, a rule gone) becomes a
    change proposed by the loading user, which must be one of the owners; it waits for the other owner
    unless `--countersigned-by` names them, and then it is carried out at once. A change the file
    already proposed is not proposed again (loading twice changes nothing), and the other owner may
    countersign it with a later load. A file that asks for something else replaces what an earlier
    file proposed; a change proposed on the page must be decided there first. Refuses with every
    problem named, and the caller's transaction undoes the whole load.
    """
    done = RetentionLoad()
    held = workflow.retention_rules.select_for_update(of=("self",)).select_related("owner")
    rules = {(rule.kind, rule.bucket): rule for rule in held}
    if created:
        for (kind, bucket), first in sorted(wanted.items()):
            written = retention_rule_write(workflow=workflow, kind=kind, bucket=bucket, rule=None, window=first)
            event = retention_rule_written_event(
                workflow=workflow, kind=kind, bucket=bucket, before=None, written=written, actor=loader.actor
            )
            event.details |= {"source": "file", "written_as": "a first rule of a new workflow: nothing was kept before"}
            done.events.append(event)
            done.wrote = True
        return done
    pending: dict[Key, RetentionChange] = {}
    for waiting in (
        RetentionChange.objects.select_for_update(of=("self",))
        .select_related("proposed_by")
        .filter(workflow=workflow, status=RetentionChangeStatus.PENDING)
    ):
        waiting.workflow = workflow  # the workflow as the file left it: its owners are those asked
        pending[(waiting.kind, waiting.bucket)] = waiting
    problems: list[tuple[str, str]] = []
    for key in sorted(set(rules) | set(wanted)):
        rule, window = rules.get(key), wanted.get(key)

        def problem(message: str, key: Key = key) -> None:
            problems.append((f"workflow '{workflow.slug}': retention.{key[0]}.{key[1]}", message))

        in_effect = rule.window if rule is not None else None
        change = pending.get(key)
        if change is not None and change.window_after == window and in_effect != window:
            _countersign_from_file(change, rule, loader, done, problem)
            continue
        if change is not None and change.source == "file":
            # The file no longer asks for what an earlier file proposed.
            done.events.append(retention_change_close(change=change, actor=loader.actor, rejected_by=None))
            done.wrote = True
        elif change is not None and in_effect != window:
            problem(
                f"a change to {shown_window(change.window_after)} proposed on the retention page by "
                f"{user_label(change.proposed_by)} is waiting for its second owner: countersign, reject or "
                "withdraw it there before the file changes this rule"
            )
            continue
        if in_effect == window:
            _owner_follows(workflow, key, rule, loader, done)
            continue
        _file_change(workflow, key, rule, window, loader, done, problem)
    if problems:
        raise ValidationFailed(problems)
    return done


def _countersign_from_file(
    change: RetentionChange, rule: RetentionRule | None, loader: Loader, done: RetentionLoad, problem: Problem
) -> None:
    """The file asks again for a change already waiting: countersigned now, or still waiting."""
    if loader.countersigned_by is None:
        done.waiting.append(_waiting_line(change.workflow, change))
        return
    refusal = retention_countersign_refusal(
        user=loader.countersigned_by, workflow=change.workflow, proposed_by=change.proposed_by
    )
    if refusal:
        problem(f"--countersigned-by {loader.countersigned_by.get_username()}: {refusal}")
        return
    signer, actor = loader.countersigned_by, loader.actor
    done.events.append(retention_change_carry_out(change=change, rule=rule, countersigned_by=signer, actor=actor))
    done.wrote = True


def _owner_follows(
    workflow: Workflow, key: Key, rule: RetentionRule | None, loader: Loader, done: RetentionLoad
) -> None:
    """A rule's named owner follows the workflow's rules owner; its window is untouched."""
    owner = workflow.rules_owner
    if rule is None or rule.owner_id == owner.pk:
        return
    before = _trail_value(rule.window, rule.owner)
    rule.owner = owner
    rule.save(update_fields=["owner"])
    done.events.append(
        EventData(
            action="retention.changed",
            actor=loader.actor,
            workflow_slug=workflow.slug,
            field=f"{key[0]}/{key[1]}",
            old_value=before,
            new_value=_trail_value(rule.window, owner),
            details={"kind": key[0], "bucket": key[1], "rule_id": rule.pk, "artifacts_shortened": 0},
        )
    )
    done.wrote = True
