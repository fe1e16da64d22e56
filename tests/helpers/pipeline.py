"""A pipeline for API tests: a write-lane workflow with field policies, its service account and token."""

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.test import Client

from approvals.intake.accounts import service_account_create
from approvals.models import ServiceAccount, Workflow
from audit.services import Actor
from tests.helpers.factories import FieldPolicyFactory, UserFactory, WorkflowFactory

if TYPE_CHECKING:
    # The test client's response as django-stubs types it (json(), headers); it exists only in the stubs.
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

POLICIES = {
    ("customer", "full_name"): "read",
    ("customer", "email"): "read",
    ("customer", "shipping_address"): "suggest",
    ("customer", "phone"): "suggest",
    ("customer", "priority"): "write",
    ("customer", "tags"): "write",
}


@dataclass
class Pipeline:
    client: Client
    workflow: Workflow
    account: ServiceAccount
    token: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def get(self, path: str, **headers: str) -> "Response":
        return self.client.get(path, headers=self.headers(**headers))

    def post(self, path: str, body: Any, **headers: str) -> "Response":
        raw = body if isinstance(body, bytes | str) else json.dumps(body)
        return self.client.post(path, raw, content_type="application/json", headers=self.headers(**headers))


REQUESTER = "maria.lopez"


def make_pipeline(workflow: Workflow, name: str = "nightly") -> Pipeline:
    # `proposal_body` asks on behalf of this person; intake takes only a requester who is an active user.
    UserFactory(username=REQUESTER, first_name="Maria", last_name="Lopez")
    issued = service_account_create(workflow=workflow, name=name, actor=Actor.system())
    return Pipeline(client=Client(), workflow=workflow, account=issued.account, token=issued.token)


def make_workflow(slug: str = "address-updates", policies: dict | None = None, **attributes: Any) -> Workflow:
    """A workflow whose file allows what `proposal_body` sends: its fields, and its follow-up email."""
    attributes.setdefault("follow_up_templates", {"email_customer": ["address-confirmed"]})
    workflow = WorkflowFactory(slug=slug, **attributes)
    for (record_type, field), access in (POLICIES if policies is None else policies).items():
        FieldPolicyFactory(workflow=workflow, record_type=record_type, field=field, access=access)
    return workflow


def proposal_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "record_type": "customer",
        "record_id": "CUS-10432",
        "action": "update",
        "changes": {"shipping_address": "12 Harbour Road, Leith"},
        "base": {"shipping_address": "4 Old Mill Lane, Leith"},
        "reason": "Customer asked for the new address in ticket T-881",
        "confidence": 0.93,
        "model": {"name": "gpt-x", "version": "2026-10-01"},
        "prompt_version": "address-update@7",
        "run_id": "run-2026-11-27-0042",
        "requested_by": REQUESTER,
        "follow_ups": [{"kind": "email_customer", "params": {"template": "address-confirmed"}}],
    }
    for key, value in overrides.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body
