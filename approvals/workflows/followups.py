"""What a workflow may ask for after a write: the follow-up kinds and email templates there are, and
what its file's `follow_ups:` (email templates by name) and `webhooks:` (hosts) keys allow.

Intake asks before it stores a proposal, and the worker asks again right before it sends, so a file
loaded in between narrows what is still waiting to run.
"""

import ipaddress
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from approvals.models import FollowUpKind, Workflow

MAX_WEBHOOK_URL_LENGTH = 2000
# The ports a webhook host listed without one may be called on.
DEFAULT_WEBHOOK_PORTS = (443, 80)
_SCHEME_PORTS = {"https": 443, "http": 80}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Subject and body of each email a proposal may ask for. The context holds `customer` (the
# customer's fields), `record` (the changed record's fields) and `changes` (what was applied).
EMAIL_TEMPLATES: dict[str, tuple[str, str]] = {
    "address-confirmed": (
        "Your shipping address has been updated",
        "Hello {{ customer.full_name }},\n\nWe have updated the shipping address on your account to:\n\n"
        "{{ customer.shipping_address }}\n\nIf you did not ask for this, please reply to this email.\n",
    ),
    "refund-update": (
        "An update on your refund",
        "Hello {{ customer.full_name }},\n\nThe refund for order {{ record.order_number }} is now: "
        "{{ record.refund_status }}.\n",
    ),
    "ticket-update": (
        "An update on your request: {{ record.subject }}",
        'Hello {{ customer.full_name }},\n\nYour request "{{ record.subject }}" is now {{ record.status }}.\n'
        "{% if record.resolution_note %}\n{{ record.resolution_note }}\n{% endif %}",
    ),
}

# The follow-up kinds a workflow file declares templates for under `follow_ups:`, and their templates.
DECLARED_TEMPLATES: dict[str, Collection[str]] = {FollowUpKind.EMAIL_CUSTOMER: EMAIL_TEMPLATES}


def webhook_host(url: str) -> str | None:
    """The `host` or `host:port` an http or https URL calls, lowercased; None when it is no such URL."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    if split.scheme not in _SCHEME_PORTS or not split.hostname or split.username or split.password:
        return None
    return f"{split.hostname}:{port}" if port else split.hostname


def webhook_target(url: str) -> tuple[str, int] | None:
    """The host name and the port an http or https URL calls (its scheme's port when it names none)."""
    if webhook_host(url) is None:
        return None
    split = urlsplit(url)
    return split.hostname or "", split.port or _SCHEME_PORTS[split.scheme]


def webhook_allowed(*, url: str, allowed: Collection[str]) -> bool:
    """Whether a workflow whose webhooks may go to `allowed` may call `url`: a listed `host:port`
    allows that port, a host listed bare allows 443 and 80 only."""
    target = webhook_target(url)
    if target is None:
        return False
    name, port = target
    return f"{name}:{port}" in allowed or (name in allowed and port in DEFAULT_WEBHOOK_PORTS)


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_refusal(*, address: str, allowed: Collection[str]) -> str:
    """Why a webhook of a workflow whose hosts are `allowed` may not connect to `address` ('' when it may).

    Only a public address may be called, unless the workflow file lists the address itself: a name
    that resolves to a loopback, link-local or private address would otherwise reach inside.
    """
    checked = _address(address)
    if checked is None:
        return f"{address} is not an IP address"
    if checked.is_global or checked in {_address(entry.partition(":")[0]) for entry in allowed}:
        return ""
    kinds = (("loopback", checked.is_loopback), ("link-local", checked.is_link_local), ("private", checked.is_private))
    kind = next((name for name, is_kind in kinds if is_kind), "non-public")
    return f"{checked} is a {kind} address, and the workflow file does not list it under webhooks"


def followup_problems(*, kind: Any, params: Any) -> list[tuple[str, str]]:
    """What is wrong with a follow-up as a pipeline sent it, each naming its part (empty when it can run)."""
    if kind not in FollowUpKind.values:
        return [("kind", f"'{str(kind)[:40]}' is not a follow-up kind; use one of {', '.join(FollowUpKind.values)}")]
    if not isinstance(params, dict):
        return [("params", "must be an object")]
    if kind == FollowUpKind.EMAIL_CUSTOMER and params.get("template") not in EMAIL_TEMPLATES:
        return [("params.template", f"must be one of {', '.join(EMAIL_TEMPLATES)}")]
    if kind == FollowUpKind.WEBHOOK:
        url = params.get("url")
        if not isinstance(url, str) or len(url) > MAX_WEBHOOK_URL_LENGTH or webhook_host(url) is None:
            limit = MAX_WEBHOOK_URL_LENGTH
            return [("params.url", f"must be an http or https URL with a host, at most {limit} characters")]
    return []


def _webhook_refusal(workflow: Workflow, url: Any) -> tuple[str, str] | None:
    hosts = workflow.webhook_hosts or []
    if not hosts:
        return "kind", f"workflow {workflow.slug} may not call webhooks: its file lists no webhook hosts"
    if isinstance(url, str) and webhook_allowed(url=url, allowed=hosts):
        return None
    host = webhook_host(url) if isinstance(url, str) else None
    message = f"workflow {workflow.slug} may not call {host} (its webhook hosts: {', '.join(hosts)})"
    target = webhook_target(url) if isinstance(url, str) else None
    if target is not None and target[0] in hosts:
        message += f"; a host listed without a port takes only ports {' and '.join(map(str, DEFAULT_WEBHOOK_PORTS))}"
    return "params.url", message


def followup_refusal(*, workflow: Workflow, kind: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """Why `workflow`'s file does not let it ask for this follow-up, naming the part ('kind',
    'params.template' or 'params.url'); None when it does. The follow-up is well formed."""
    if kind == FollowUpKind.WEBHOOK:
        return _webhook_refusal(workflow, params.get("url"))
    declared = (workflow.follow_up_templates or {}).get(kind) or []
    if not declared:
        return "kind", f"workflow {workflow.slug} may not ask for {kind} follow-ups: its file declares none"
    template = str(params.get("template"))[:64]
    if template not in declared:
        allowed = ", ".join(declared)
        return "params.template", f"workflow {workflow.slug} may not send the template '{template}' (it may: {allowed})"
    return None
