"""Workflows as code: validate a whole workflow file, then create or update what it describes."""

import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from approvals.models import (
    WEEKDAYS,
    Access,
    Action,
    FieldPolicy,
    FollowUpKind,
    Lane,
    Stage,
    Workflow,
    WorkflowGroupObjectPermission,
)
from approvals.workflows.declared import Bad, check_outside_services, check_systems, check_targets
from approvals.workflows.followups import DECLARED_TEMPLATES
from approvals.workflows.noticing import check_noticing
from approvals.workflows.retention_rules import Loader, retention_rules_load
from approvals.workflows.schedule import DEFAULT_OVERRIDE_MINUTES, OverrideSchedule
from approvals.workflows.stage_gate import StageForce, StageMove, stage_moves_check
from approvals.workflows.stores import workflow_store_refusals
from audit.models import ArtifactKind, Bucket
from audit.services import Actor, EventData, audit_record_many
from core.errors import ValidationFailed
from core.timeutils import format_window, parse_window
from records.catalogue import RECORD_TYPES, Risk
from records.selectors import store_terms
from records.store import StoreUnavailable, store_side_effects

APPROVER_PERMISSIONS = ("view_workflow", "review_workflow", "rollback_workflow")
OVERRIDER_PERMISSIONS = ("view_workflow", "override_workflow")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_WEBHOOK_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[1-9]\d{0,4})?$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_WORKFLOW_KEYS = {
    "slug", "name", "owner", "lane", "stage", "canary_daily_limit", "approvers", "overrides",
    "actions", "two_person", "fields", "retention", "retention_owner", "retention_co_owner", "webhooks", "follow_ups",
    "systems", "outside_services", "rollback_target", "trace_target", "canary_days",
    "decide_within", "expire_after", "circuit_breaker", "notify",
}  # fmt: skip


@dataclass
class WorkflowSpec:
    """One workflow from the file, checked and ready to write."""

    slug: str
    attributes: dict[str, Any]
    approver_group: str | None
    schedule: OverrideSchedule
    policies: dict[tuple[str, str], str] = field(default_factory=dict)
    retention: dict[tuple[str, str], timedelta] = field(default_factory=dict)


@dataclass
class LoadResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # The retention changes the file asks for that wait for their second owner, one line each.
    retention_waiting: list[str] = field(default_factory=list)


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, message: str) -> None:
        self.items.append((where, message))


# Where each part of an override schedule is written in the file.
_SCHEDULE_KEYS = {
    "days": "overrides.day.days",
    "day_from": "overrides.day.from",
    "day_to": "overrides.day.to",
    "timezone": "overrides.day.timezone",
    "after_hours_group": "overrides.after_hours",
    "max_minutes": "overrides.max_minutes",
}


def _parse_time(value: Any) -> time | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 08:00 as sexagesimal minutes.
        return time(value // 60, value % 60)
    if isinstance(value, str) and (match := _TIME.match(value.strip())):
        return time(int(match.group(1)), int(match.group(2)))
    return None


def _check_people(raw: dict, users: dict[str, Any], bad: Bad) -> dict[str, Any]:
    """Its name, owner and retention owner."""
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        bad("name", "is required")
    owner = raw.get("owner")
    if owner not in users:
        bad("owner", f"no user '{owner}'" if owner else "is required")
    retention_owner = raw.get("retention_owner", owner)
    if "retention_owner" in raw and not retention_owner:
        bad("retention_owner", "every retention rule needs a named owner; name a user or leave the key out")
    elif retention_owner and retention_owner not in users:
        bad("retention_owner", f"no user '{retention_owner}'")
    co_owner = raw.get("retention_co_owner")
    if co_owner is not None and co_owner not in users:
        bad("retention_co_owner", f"no user '{co_owner}'")
    elif co_owner is not None and co_owner == retention_owner:
        bad("retention_co_owner", "must be someone other than the retention owner: two people own the rules")
    return {
        "name": (name or "").strip() if isinstance(name, str) else "",
        "owner": users.get(str(owner)),
        "retention_owner": users.get(str(retention_owner)),
        "retention_co_owner": users.get(str(co_owner)) if co_owner is not None else None,
    }


def _check_rollout(raw: dict, bad: Bad) -> dict[str, Any]:
    """Its lane, stage and canary limit."""
    lane = raw.get("lane")
    if lane not in Lane.values:
        bad("lane", f"'{lane}' is not one of {', '.join(Lane.values)}")
    stage = raw.get("stage", Stage.DRAFT)
    if stage not in Stage.values:
        bad("stage", f"'{stage}' is not one of {', '.join(Stage.values)}")
    canary = raw.get("canary_daily_limit", 50)
    if not isinstance(canary, int) or isinstance(canary, bool) or canary < 0:
        bad("canary_daily_limit", "must be a whole number, 0 or more")
        canary = 50
    return {"lane": lane, "stage": stage, "canary_daily_limit": canary}


def _check_approvers(raw: dict, lane: Any, bad: Bad) -> str | None:
    approvers = raw.get("approvers")
    if approvers is not None and (not isinstance(approvers, str) or not approvers.strip()):
        bad("approvers", "must be a group name")
    if lane == Lane.WRITE and not approvers:
        bad("approvers", "a write-lane workflow needs an approver group")
    return approvers


def _check_actions(raw: dict, lane: Any, bad: Bad) -> list[str]:
    actions = raw.get("actions", [])
    if not isinstance(actions, list) or any(a not in Action.values for a in actions):
        bad("actions", f"must be a list drawn from {', '.join(Action.values)}")
        return []
    if lane == Lane.ASSIST and actions:
        bad("actions", "an assist-lane workflow only reads and drafts; it can take no action")
    return list(actions)


def _check_webhooks(raw: dict, lane: Any, bad: Bad) -> list[str]:
    webhooks = raw.get("webhooks", []) or []
    if not isinstance(webhooks, list) or any(not isinstance(h, str) for h in webhooks):
        bad("webhooks", 'must be a list of host names, such as ["hooks.example.com", "crm.internal:8443"]')
        return []
    hosts = [host.strip().lower() for host in webhooks]
    for host in hosts:
        if len(host) > 260 or not _WEBHOOK_HOST.match(host) or (":" in host and int(host.rsplit(":", 1)[1]) > 65535):
            bad(f"webhooks.{host[:100]}", "must be a host name, or host:port, without scheme or path")
    if lane == Lane.ASSIST and hosts:
        bad("webhooks", "an assist-lane workflow only reads and drafts; it calls no webhook")
    return sorted(set(hosts))


def _check_follow_ups(raw: dict, lane: Any, bad: Bad) -> dict[str, list[str]]:
    """The templates its follow-ups may send, by kind (webhooks are allowed by their hosts instead)."""
    follow_ups = raw.get("follow_ups", {}) or {}
    if not isinstance(follow_ups, dict):
        bad("follow_ups", "must map follow-up kinds to template names, such as {email_customer: [address-confirmed]}")
        return {}
    declared: dict[str, list[str]] = {}
    for kind, names in follow_ups.items():
        key = f"follow_ups.{str(kind)[:40]}"
        if kind not in DECLARED_TEMPLATES:
            hint = "; webhooks are allowed by the hosts listed under webhooks" if kind == FollowUpKind.WEBHOOK else ""
            bad(key, f"unknown follow-up kind; known: {', '.join(DECLARED_TEMPLATES)}{hint}")
        elif not isinstance(names, list) or any(not isinstance(name, str) for name in names):
            bad(key, "must be a list of template names")
        else:
            known = DECLARED_TEMPLATES[kind]
            for name in names:
                if name not in known:
                    bad(f"{key}.{name[:64]}", f"unknown template; known: {', '.join(known)}")
            if names:
                declared[kind] = sorted(set(names))
    if lane == Lane.ASSIST and follow_ups:
        bad("follow_ups", "an assist-lane workflow only reads and drafts; it asks for no follow-up")
    return declared


def _check_fields(raw: dict, lane: Any, bad: Bad) -> dict[tuple[str, str], str]:
    """Its field policies, by (record type, field)."""
    policies: dict[tuple[str, str], str] = {}
    fields = raw.get("fields", {}) or {}
    if not isinstance(fields, dict):
        bad("fields", "must map record types to {field: access}")
        return policies
    for record_type, entries in fields.items():
        if record_type not in RECORD_TYPES:
            bad(f"fields.{record_type}", f"unknown record type; known: {', '.join(RECORD_TYPES)}")
            continue
        if not isinstance(entries, dict):
            bad(f"fields.{record_type}", "must map field names to read, suggest or write")
            continue
        spec = RECORD_TYPES[record_type]
        try:
            side_effects = store_side_effects(record_type=record_type)
        except StoreUnavailable:
            side_effects = {}  # the store cannot be built here: `workflow_store_refusals` says why
        for field_name, access in entries.items():
            key = f"fields.{record_type}.{field_name}"
            if not spec.has_field(field_name):
                bad(key, f"unknown field of {record_type}")
            elif access not in Access.values:
                bad(key, f"'{access}' is not one of {', '.join(Access.values)}")
            elif access == Access.WRITE and spec.field(field_name).risk == Risk.HIGH:
                bad(key, f"write is refused on the high-risk field {field_name}; use suggest so a person approves")
            elif access == Access.WRITE and field_name in side_effects:
                effect = side_effects[field_name].sentence
                bad(key, f"write is refused on {field_name}: {effect}; use suggest so a person approves")
            elif lane == Lane.ASSIST and access != Access.READ:
                bad(key, f"an assist-lane workflow may only read; '{access}' would let it change records")
            else:
                policies[(record_type, field_name)] = access
    return policies


def _check_two_person(raw: dict, policies: dict[tuple[str, str], str], bad: Bad) -> dict[str, list[str]]:
    """The actions and fields that need two different approvers."""
    two_person = raw.get("two_person", {}) or {}
    if not isinstance(two_person, dict) or set(two_person) - {"actions", "fields"}:
        bad("two_person", "must be {actions: [...], fields: [...]}")
        return {"two_person_actions": [], "two_person_fields": []}
    actions = two_person.get("actions", []) or []
    fields = two_person.get("fields", []) or []
    if not isinstance(actions, list) or any(a not in Action.values for a in actions):
        bad("two_person.actions", f"must be a list drawn from {', '.join(Action.values)}")
        actions = []
    if not isinstance(fields, list) or any(not isinstance(f, str) for f in fields):
        bad("two_person.fields", "must be a list of field names")
        fields = []
    known_fields = {name for (_, name) in policies}
    for field_name in fields:
        if field_name not in known_fields:
            bad(f"two_person.fields.{field_name}", "is not a field in this workflow's policies")
    return {"two_person_actions": list(actions), "two_person_fields": list(fields)}


def _check_overrides(raw: dict, bad: Bad) -> OverrideSchedule:
    """Its override schedule. The file's shape is checked here, the schedule's rules by the schedule."""
    overrides = raw.get("overrides", {}) or {}
    if not isinstance(overrides, dict) or set(overrides) - {"day", "after_hours", "max_minutes"}:
        bad("overrides", "must be {day: {...}, after_hours: {...}, max_minutes: N}")
        return OverrideSchedule()
    day = overrides.get("day")
    if day is not None and (not isinstance(day, dict) or set(day) - {"group", "days", "from", "to", "timezone"}):
        bad("overrides.day", "must be {group, days, from, to, timezone}")
        day = None
    day_group = None
    if day is not None:
        day_group = day.get("group")
        if not isinstance(day_group, str) or not day_group:
            bad("overrides.day.group", "is required")
            day_group = ""  # still a day shift: its hours are checked too
    after = overrides.get("after_hours")
    after_group = after.get("group") if isinstance(after, dict) and set(after) == {"group"} else None
    if after is not None and not isinstance(after_group, str):
        bad("overrides.after_hours", "must be {group: NAME}")
        after_group = None
    hours = day or {}
    days = hours.get("days", list(WEEKDAYS[:5]))
    schedule = OverrideSchedule(
        day_group=day_group,
        days=tuple(days) if isinstance(days, list) else (),
        day_from=_parse_time(hours.get("from")),
        day_to=_parse_time(hours.get("to")),
        timezone=str(hours.get("timezone", "UTC")),
        after_hours_group=after_group,
        max_minutes=overrides.get("max_minutes", DEFAULT_OVERRIDE_MINUTES),
    )
    for part, message in schedule.problems():
        if not (part == "after_hours_group" and after is not None):  # a misshapen block is reported above
            bad(_SCHEDULE_KEYS[part], message)
    return schedule


def _check_retention(raw: dict, bad: Bad) -> dict[tuple[str, str], timedelta]:
    """Its retention windows, by (artifact kind, bucket)."""
    retention: dict[tuple[str, str], timedelta] = {}
    raw_retention = raw.get("retention", {}) or {}
    if not isinstance(raw_retention, dict):
        bad("retention", "must map artifact kinds to {bucket: window}")
        return retention
    for kind, buckets in raw_retention.items():
        if kind not in ArtifactKind.values:
            bad(f"retention.{kind}", f"unknown artifact kind; known: {', '.join(ArtifactKind.values)}")
            continue
        if not isinstance(buckets, dict):
            bad(f"retention.{kind}", "must map buckets to windows such as 7d")
            continue
        for bucket, window in buckets.items():
            if bucket not in Bucket.values:
                bad(f"retention.{kind}.{bucket}", f"unknown bucket; known: {', '.join(Bucket.values)}")
                continue
            try:
                retention[(kind, bucket)] = parse_window(window)
            except ValueError as error:
                bad(f"retention.{kind}.{bucket}", str(error))
    return retention


def _check_workflow(raw: Any, index: int, users: dict[str, Any], problems: _Problems) -> WorkflowSpec | None:
    """One workflow of the file, or None when it cannot even be named; every problem goes to `problems`."""
    if not isinstance(raw, dict):
        problems.add(f"workflows[{index}]", "must be a mapping")
        return None
    slug = raw.get("slug")
    if not isinstance(slug, str) or not _SLUG.match(slug):
        problems.add(f"workflows[{index}].slug", "must be lowercase letters, digits and dashes")
        return None

    def bad(key: str, message: str) -> None:
        problems.add(f"workflow '{slug}': {key}", message)

    for key in sorted(set(raw) - _WORKFLOW_KEYS):
        bad(key, f"unknown key; known keys: {', '.join(sorted(_WORKFLOW_KEYS))}")
    attributes = _check_people(raw, users, bad) | _check_rollout(raw, bad)
    lane = attributes["lane"]
    approvers = _check_approvers(raw, lane, bad)
    attributes["actions"] = _check_actions(raw, lane, bad)
    attributes["webhook_hosts"] = _check_webhooks(raw, lane, bad)
    attributes["follow_up_templates"] = _check_follow_ups(raw, lane, bad)
    policies = _check_fields(raw, lane, bad)
    attributes |= _check_two_person(raw, policies, bad)
    attributes["systems"] = check_systems(raw, bad)
    attributes["outside_services"] = check_outside_services(raw, policies, bad)
    attributes |= check_targets(raw, bad)
    attributes |= check_noticing(raw, bad)
    return WorkflowSpec(
        slug=slug,
        attributes=attributes,
        approver_group=approvers,
        schedule=_check_overrides(raw, bad),
        policies=policies,
        retention=_check_retention(raw, bad),
    )


def workflows_check(document: Any) -> list[WorkflowSpec]:
    """Check a whole workflow document. Raises ValidationFailed listing every problem found."""
    problems = _Problems()
    if not isinstance(document, dict) or not isinstance(document.get("workflows"), list):
        raise ValidationFailed([("workflows", "the file must hold a list under the key 'workflows'")])
    for key in sorted(set(document) - {"workflows"}):
        problems.add(key, "unknown top-level key; only 'workflows' is read")
    user_model = get_user_model()
    names = {
        raw.get(k)
        for raw in document["workflows"]
        if isinstance(raw, dict)
        for k in ("owner", "retention_owner", "retention_co_owner")
    }
    users = {
        u.get_username(): u for u in user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__in": names - {None}})
    }
    specs: list[WorkflowSpec] = []
    seen: set[str] = set()
    terms = store_terms()
    for index, raw in enumerate(document["workflows"]):
        spec = _check_workflow(raw, index, users, problems)
        if spec is None:
            continue
        if spec.slug in seen:
            problems.add(f"workflow '{spec.slug}'", "appears twice in the file")
        seen.add(spec.slug)
        specs.append(spec)
        for refusal in workflow_store_refusals(policies=spec.policies, actions=spec.attributes["actions"], terms=terms):
            key = (
                f"fields.{refusal.record_type}.{refusal.field}"
                if refusal.field
                else f"actions.{refusal.action}"
                if refusal.action
                else f"fields.{refusal.record_type}"
            )
            problems.add(f"workflow '{spec.slug}': {key}", refusal.reason)
    if problems.items:
        raise ValidationFailed(problems.items)
    return specs


def _comparable(workflow: Workflow) -> dict[str, Any]:
    return {
        "name": workflow.name,
        "owner": workflow.owner.get_username(),
        "retention_owner": workflow.retention_owner.get_username() if workflow.retention_owner else None,
        "retention_co_owner": workflow.retention_co_owner.get_username() if workflow.retention_co_owner else None,
        "lane": workflow.lane,
        "stage": workflow.stage,
        "canary_daily_limit": workflow.canary_daily_limit,
        "approver_group": workflow.approver_group.name if workflow.approver_group else None,
        "actions": workflow.actions,
        "two_person_actions": workflow.two_person_actions,
        "two_person_fields": workflow.two_person_fields,
        **OverrideSchedule.of(workflow).snapshot(),
        "webhook_hosts": workflow.webhook_hosts,
        "follow_up_templates": workflow.follow_up_templates,
        "systems": workflow.systems,
        "outside_services": workflow.outside_services,
        "rollback_target": format_window(workflow.rollback_target),
        "trace_target": format_window(workflow.trace_target),
        "canary_days": workflow.canary_days,
        "decide_within": format_window(workflow.decide_within) if workflow.decide_within else None,
        "expire_after": format_window(workflow.expire_after) if workflow.expire_after else None,
        "circuit_breaker": workflow.circuit_breaker,
        "notify": workflow.notify,
    }


def _group(name: str | None) -> Group | None:
    return Group.objects.get_or_create(name=name)[0] if name else None


def _sync_group_permissions(workflow: Workflow) -> None:
    wanted: set[tuple[int, str]] = set()
    if workflow.approver_group:
        wanted |= {(workflow.approver_group.pk, perm) for perm in APPROVER_PERMISSIONS}
    for group in (workflow.override_day_group, workflow.override_after_hours_group):
        if group:
            wanted |= {(group.pk, perm) for perm in OVERRIDER_PERMISSIONS}
    current = {
        (row.group_id, row.permission.codename): row
        for row in WorkflowGroupObjectPermission.objects.filter(content_object=workflow).select_related("permission")
    }
    groups = {g.pk: g for g in Group.objects.filter(pk__in={pk for pk, _ in wanted | set(current)})}
    for group_pk, perm in wanted - set(current):
        assign_perm(perm, groups[group_pk], workflow)
    for group_pk, perm in set(current) - wanted:
        remove_perm(perm, groups[group_pk], workflow)


def _write_spec(
    spec: WorkflowSpec, loader: Loader, waiting: list[str]
) -> tuple[str, list[EventData], StageMove | None]:
    actor = loader.actor
    events: list[EventData] = []
    attributes = dict(spec.attributes)
    attributes["approver_group"] = _group(spec.approver_group)
    workflow = Workflow.objects.select_for_update().filter(slug=spec.slug).first()
    outcome = "unchanged"
    move = None
    if workflow is None:
        workflow = Workflow(slug=spec.slug, **attributes)
        spec.schedule.apply_to(workflow)
        workflow.save(force_insert=True)
        outcome = "created"
        if workflow.stage != Stage.DRAFT:
            # A workflow the file creates beyond draft moves there from draft.
            move = StageMove(workflow=workflow, stage_before=Stage.DRAFT, entered_before=workflow.stage_changed_at)
        events.append(
            EventData(action="workflow.created", actor=actor, workflow_slug=spec.slug, new_value=_comparable(workflow))
        )
    else:
        before = _comparable(workflow)
        entered_before = workflow.stage_changed_at
        for name, value in attributes.items():
            setattr(workflow, name, value)
        if workflow.stage != before["stage"]:
            workflow.stage_changed_at = timezone.now()
            move = StageMove(workflow=workflow, stage_before=before["stage"], entered_before=entered_before)
        spec.schedule.apply_to(workflow)
        after = _comparable(workflow)
        if before != after:
            workflow.save()
            outcome = "updated"
            changed = {k for k in after if before[k] != after[k]}
            events.append(
                EventData(
                    action="workflow.changed",
                    actor=actor,
                    workflow_slug=spec.slug,
                    old_value={k: before[k] for k in sorted(changed)},
                    new_value={k: after[k] for k in sorted(changed)},
                )
            )

    current_policies = {(p.record_type, p.field): p for p in workflow.policies.all()}
    for key in sorted(set(current_policies) | set(spec.policies)):
        old = current_policies[key].access if key in current_policies else None
        new = spec.policies.get(key)
        if old == new:
            continue
        if new is None:
            current_policies[key].delete()
        elif old is None:
            FieldPolicy.objects.create(workflow=workflow, record_type=key[0], field=key[1], access=new)
        else:
            FieldPolicy.objects.filter(pk=current_policies[key].pk).update(access=new)
        outcome = "updated" if outcome == "unchanged" else outcome
        events.append(
            EventData(
                action="policy.changed",
                actor=actor,
                workflow_slug=spec.slug,
                record_type=key[0],
                field=key[1],
                old_value=old,
                new_value=new,
            )
        )

    retention = retention_rules_load(
        workflow=workflow, wanted=spec.retention, created=outcome == "created", loader=loader
    )
    events.extend(retention.events)
    outcome = "updated" if retention.wrote and outcome == "unchanged" else outcome
    waiting.extend(retention.waiting)
    _sync_group_permissions(workflow)
    return outcome, events, move


def workflows_load(
    *,
    document: Any,
    actor: Actor,
    user: Any = None,
    countersigned_by: Any = None,
    force: StageForce | None = None,
) -> LoadResult:
    """Create or update every workflow in `document`. All or nothing; loading twice changes nothing.

    `user` is the person loading the file and `countersigned_by` the other owner of the retention
    rules who already countersigned its retention changes (see `retention_rules_load`). Each change of
    stage passes the stage gate (`stage_gate`) once everything else is written: a move to a later
    stage whose readiness checks fail refuses the whole file, unless `force` carries it."""
    specs = workflows_check(document)
    result = LoadResult()
    loader = Loader(actor=actor, user=user, countersigned_by=countersigned_by)
    with transaction.atomic():
        events: list[EventData] = []
        moves: list[StageMove] = []
        for spec in specs:
            outcome, spec_events, move = _write_spec(spec, loader, result.retention_waiting)
            getattr(result, outcome).append(spec.slug)
            events.extend(spec_events)
            moves += [move] if move else []
        verdict = stage_moves_check(moves=moves, force=force, actor=actor)
        if verdict.refusals:
            raise ValidationFailed(verdict.refusals)
        audit_record_many(events + verdict.events)
    return result


def workflow_group_permissions_sync(*, workflow: Workflow) -> None:
    """Give the approver and override groups their object permissions on `workflow`, and take
    them from groups that no longer hold those roles."""
    _sync_group_permissions(workflow)
