"""Every named URL of the project, walked as each kind of person with the ids of workflow B's objects.

The URLs come from the URLconf itself, so a page added later is walked too (and must be given its
expected answers here). For each role the walk asserts the status of every page, that nothing of
workflow B (the marker QXB in its records, proposals, batches, stops, overrides, undo jobs,
artifacts and events) reaches anyone who may not see B, and that a field no workflow may read
(QXN) reaches nobody but an auditor.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponseBase
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from audit.models import AuditEvent
from records.models import Order, Ticket
from tests.helpers.two_workflows import A_MARK, B_MARK, NOBODY_MARK, ROLES, TwoWorkflows, two_workflows

# The statuses, in the order of ROLES: anonymous, agent, lead (approves A), ops (an ops manager),
# auditor (audit_trail and export_trail), root (staff and superuser, in no group).
PAGES: dict[str, str] = {
    "home": "302 302 302 302 302 302",
    "login": "200 200 200 200 200 200",
    "logout": "405 405 405 405 405 405",  # logging out is a POST
    "trail": "302 200 200 200 200 200",
    "trail-export-csv": "302 403 403 403 200 403",
    "trail-export-json": "302 403 403 403 200 403",
    "record-search": "302 200 200 200 200 200",
    "record-timeline": "302 404 404 200 200 404",  # B's order: no workflow the lead sees touches orders
    "workflow-list": "302 200 200 200 200 200",
    "map": "302 200 200 200 200 200",
    "map-csv": "302 200 200 200 200 200",
    "workflow-schedule": "302 404 404 403 403 404",  # only the owner edits it; others who see B are told so
    "workflow-retention": "302 404 404 200 200 404",
    "workflow-review": "302 404 404 200 200 404",
    "workflow-readiness": "302 404 404 200 200 404",
    "workflow-quality": "302 404 404 200 200 404",
    "workflow-promote": "302 405 405 405 405 405",  # a POST, by the owner alone
    "service-account-revoke": "302 404 404 403 403 404",
    "notice-preferences": "302 200 200 200 200 200",  # each person's own
    "blocked": "302 200 200 200 200 200",
    "override-grant": "302 404 404 404 404 404",  # names nothing to override
    "override-revoke": "302 405 405 405 405 405",
    "override-review": "302 200 200 200 200 200",
    "override-acknowledge": "302 405 405 405 405 405",
    "override-flag": "302 405 405 405 405 405",
    # Stopping and undoing are powers from named groups: the superuser's flags grant neither.
    "stop-new": "302 403 200 200 403 403",
    "stop-release": "302 404 404 200 200 404",
    "review-queue": "302 200 200 200 200 200",
    "review-counts": "302 200 200 200 200 200",
    "review-detail": "302 404 404 404 404 404",  # deciding is for B's approvers alone
    "review-claim": "302 405 405 405 405 405",
    "review-approve": "302 405 405 405 405 405",
    "review-reject": "302 405 405 405 405 405",
    "review-shadow-verdict": "302 405 405 405 405 405",
    "review-force-apply": "302 404 404 404 404 404",
    "review-batch": "302 404 404 404 404 404",
    "review-group": "302 404 404 404 404 404",
    "review-batch-discard": "302 405 405 405 405 405",  # a POST, by B's approvers alone
    "trace-change": "302 404 404 200 200 404",
    "trace-proposal": "302 404 404 200 200 404",
    "change-undo": "302 404 404 200 200 404",
    "undo-bulk": "302 403 200 200 403 403",
    "undo-job": "302 404 404 200 404 404",  # its starter (ops) and those who may undo B follow it
    "undo-job-cancel": "302 405 405 405 405 405",
    "trace-drill-start": "302 404 404 200 200 404",
    "trace-drill": "302 404 404 200 200 404",  # its person (ops) and whoever sees B read it
    "rollback-drill": "302 404 404 200 200 404",
    "prompt-promote": "302 405 405 405 405 405",  # a POST, by the owner alone
    "metrics": "404 404 404 404 404 404",  # served only to METRICS_TOKEN's bearer, and none is set here
    "api-v1:openapi-json": "200 200 200 200 200 200",
    "api-v1:openapi-view": "200 200 200 200 200 200",
    "api-v1:health": "200 200 200 200 200 200",
    "api-v1:record_read": "401 401 401 401 401 401",  # the API answers tokens, never sessions
    "api-v1:proposal_create": "405 405 405 405 405 405",
    "api-v1:proposal_read": "401 401 401 401 401 401",
    "api-v1:proposal_artifact_create": "405 405 405 405 405 405",
    "api-v1:artifact_create": "405 405 405 405 405 405",
    "api-v1:batch_create": "405 405 405 405 405 405",
    "api-v1:batch_read": "401 401 401 401 401 401",
    "api-v1:batch_proposals_create": "405 405 405 405 405 405",
    "api-v1:batch_stop": "405 405 405 405 405 405",
    "api-v1:batch_discard": "405 405 405 405 405 405",
    "api-v1:api-root": "404 404 404 404 404 404",
    "api-v1:unmatched": "404 404 404 404 404 404",
    # The admin lets in staff only (here root); it redirects everyone else to its login.
    "admin:index": "302 302 302 302 302 200",
    "admin:login": "200 200 200 200 200 302",
    "admin:logout": "302 302 302 302 302 405",
    "admin:password_change": "302 302 302 302 302 200",
    "admin:password_change_done": "302 302 302 302 302 200",
    "admin:autocomplete": "302 302 302 302 302 403",
    "admin:jsi18n": "302 302 302 302 302 200",
    "admin:view_on_site": "302 302 302 302 302 404",
    "admin:app_list": "302 302 302 302 302 404",  # the records app: nothing in it is shown to root
}
ADMIN_VIEWS = ("changelist", "add", "history", "delete", "change")
# Record data and the trail: shown in the admin only to those who see everything, never for a flag.
ADMIN_DATA = (
    "audit_auditevent",
    "records_customer",
    "records_order",
    "records_ticket",
    "records_change",
    "approvals_proposal",
    "approvals_batch",
    "approvals_stopswitch",
    "approvals_serviceaccount",
)
PAGES |= {f"admin:{model}_{view}": "302 302 302 302 302 403" for model in ADMIN_DATA for view in ADMIN_VIEWS}
PAGES |= {
    f"admin:auth_{model}_{view}": "302 302 302 302 302 200" for model in ("group", "user") for view in ADMIN_VIEWS
}
PAGES |= {
    "admin:auth_user_password_change": "302 302 302 302 302 200",
    "admin:approvals_workflow_changelist": "302 302 302 302 302 200",
    "admin:approvals_workflow_history": "302 302 302 302 302 200",
    "admin:approvals_workflow_change": "302 302 302 302 302 200",
    "admin:approvals_workflow_add": "302 302 302 302 302 403",
    "admin:approvals_workflow_delete": "302 302 302 302 302 403",
}
SEES_B = {"ops", "auditor"}  # an ops manager may stop and undo any workflow, so sees them all


def named_routes(resolver: URLResolver | None = None, namespace: str = "", params: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """(name, parameter names) of every named URL pattern, namespaces and nested prefixes included."""
    for pattern in (resolver or get_resolver()).url_patterns:
        names = params + tuple(getattr(pattern.pattern, "converters", {})) + tuple(pattern.pattern.regex.groupindex)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from named_routes(pattern, inner, names)
        elif pattern.name:
            yield f"{namespace}{pattern.name}", sorted(set(names))


def _admin_object(world: TwoWorkflows, name: str) -> object:
    model = name.removeprefix("admin:").rsplit("_", 1)[0]
    return {
        "auth_group": world.b.workflow.approver_group,
        "auth_user": world.people["agent"],
        "audit_auditevent": AuditEvent.objects.filter(workflow_slug=world.b.workflow.slug).first(),
        "records_customer": world.customer,
        "records_order": world.order,
        "records_ticket": Ticket.objects.get(customer=world.customer),
        "records_change": world.b.change,
        "approvals_workflow": world.b.workflow,
        "approvals_serviceaccount": world.b_account,
        "approvals_proposal": world.b.applied,
        "approvals_batch": world.b.batch,
        "approvals_stopswitch": world.b_stop,
    }[model]


def _url(world: TwoWorkflows, name: str, params: list[str]) -> str:
    """The URL of `name` about workflow B's objects."""
    by_page = {
        "override": world.b_override.pk,
        "stop": world.b_stop.pk,
        "undo": world.b_undo_job.pk,
        "trace": world.b_drill.pk,
        "rollback": world.b_rollback_drill.pk,
    }
    values: dict[str, object] = {
        "slug": world.b.workflow.slug,
        "account_id": world.b_account.pk,
        "proposal_id": world.b.applied.pk,
        "change_id": world.b.change.id,
        "batch_id": world.b.batch.pk,
        "record_type": "order",
        "record_id": world.order.record_id,
        "app_label": "records",
        "unmatched": "nothing-here",
        "id": world.people["agent"].pk,
        "content_type_id": ContentType.objects.get_for_model(Order).pk,
    }
    kwargs: dict[str, object] = {}
    for param in params:
        if param == "pk":
            kwargs[param] = by_page[name.split("-")[0]]
        elif param == "object_id":
            target = world.order if name == "admin:view_on_site" else _admin_object(world, name)
            kwargs[param] = target.pk  # type: ignore[attr-defined]
        else:
            kwargs[param] = values[param]
    return reverse(name, kwargs=kwargs)


# A random token in a page (a CSRF token, a CSP nonce, a session-bound key) can hold a marker's three
# letters by chance, as one in a few thousand pages does: runs of 20 or more token characters are not
# what the walk looks for, so they are blanked before it looks.
RANDOM_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=]{20,}")


def _body(response: HttpResponseBase) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    return RANDOM_TOKEN.sub("", content.decode())


def _window() -> dict[str, str]:
    now = timezone.now()
    return {"since": (now - timedelta(days=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}


def test_every_named_url_has_its_expected_answers():
    assert {name for name, _ in named_routes()} == set(PAGES)


@pytest.mark.parametrize("role", ROLES)
def test_walking_every_page_as_each_role_shows_workflow_b_only_to_those_who_may_see_it(db, role):
    world = two_workflows()
    client = Client()
    if role != "anonymous":
        client.force_login(world.people[role])
    column = ROLES.index(role)
    wrong, leaks, showing_b = [], [], set()
    for name, params in named_routes():
        query = _window() if name.startswith("trail-export") else {}
        response = client.get(_url(world, name, params), query)
        expected = int(PAGES[name].split()[column])
        if response.status_code != expected:
            wrong.append(f"{name}: {response.status_code}, expected {expected}")
        body = _body(response)
        if B_MARK in body:
            showing_b.add(name)
        if B_MARK in body and role not in SEES_B:
            leaks.append(f"{name} shows workflow B")
        if NOBODY_MARK in body and role != "auditor":
            leaks.append(f"{name} shows a field no workflow may read")
    assert wrong == []
    assert leaks == []
    if role in SEES_B:  # the markers are there to be found by those who may see them
        assert {"trail", "trace-change", "trace-proposal", "record-timeline", "stop-release"} <= showing_b


def test_the_lead_of_a_sees_a_s_pages_and_a_shared_customer_without_b(client, db):
    world = two_workflows()
    client.force_login(world.people["lead"])
    pages = [
        reverse("trail"),
        reverse("trace-change", args=[world.a.change.id]),
        reverse("trace-proposal", args=[world.a.applied.pk]),
        reverse("change-undo", args=[world.a.change.id]),
        reverse("record-timeline", args=["customer", world.customer.record_id]),
        reverse("record-search"),
    ]
    for url in pages:
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert A_MARK in body, url
        assert B_MARK not in body and NOBODY_MARK not in body, url
    timeline = client.get(reverse("record-timeline", args=["customer", world.customer.record_id])).content.decode()
    assert "Morag Fraser" in timeline  # the name, which A may read
    assert "<td>(withheld)</td>" in timeline  # the support and internal notes, which A may not


def test_an_auditor_reads_every_field_of_the_shared_customer(client, db):
    world = two_workflows()
    client.force_login(world.people["auditor"])
    timeline = client.get(reverse("record-timeline", args=["customer", world.customer.record_id])).content.decode()
    assert A_MARK in timeline and B_MARK in timeline and NOBODY_MARK in timeline
    assert "(withheld)" not in timeline
