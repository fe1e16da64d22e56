"""The stores file: which system of record holds each record type, and the checks of each store.

`store_bindings_check` reads a whole stores file and refuses it with every problem, each naming its
key; `store_bindings_write` then makes the bindings what the file says, all or nothing, with one
`store.configured` event per record type that changed. A record type the file does not name is on
the built-in store. `stores_check` connects to each bound store and records what it found.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import Actor, EventData, audit_record_many
from core.errors import ValidationFailed
from records.catalogue import RECORD_TYPES
from records.models import StoreBinding
from records.store.connectors import StoreCheck, UnknownConnector, connector_class
from records.store.placeholders import PLACEHOLDER, has_literal_password, placeholders
from records.store.protocol import StoreUnavailable
from records.store.registry import Binding, binding_store, bindings_reload

BUILTIN = "builtin"
_BINDING_KEYS = {"connector", "fields", "side_effects"}
# Settings that hold a secret whatever the connector: only a ${NAME} placeholder may stand there.
_SECRET_KEYS = {"token", "password", "secret", "api_key"}

Problems = list[tuple[str, str]]


@dataclass(frozen=True)
class BindingSpec:
    """One record type's binding from the file, checked and ready to write."""

    record_type: str
    connector: str
    settings: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    side_effects: dict[str, str] = field(default_factory=dict)

    @property
    def configuration(self) -> dict[str, Any]:
        """The binding as the trail keeps it: placeholders, never their values."""
        return {
            "connector": self.connector,
            "settings": self.settings,
            "fields": self.fields,
            "side_effects": self.side_effects,
        }

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.configuration, sort_keys=True).encode()).hexdigest()

    def as_binding(self) -> Binding:
        return Binding(self.record_type, self.connector, self.settings, self.fields, self.side_effects, self.digest)


@dataclass
class StoresLoadResult:
    bound: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    to_builtin: list[str] = field(default_factory=list)


def _check_settings(where: str, settings: dict[str, Any]) -> Problems:
    """Secrets: no password written in a URL, no secret written at all, every variable set now."""
    problems: Problems = []
    for key, value in settings.items():
        at = f"{where}.{key}"
        if isinstance(value, str) and has_literal_password(value):
            problems.append(
                (at, "a password is written in the URL; keep the URL in an environment variable and write ${NAME}")
            )
        if key in _SECRET_KEYS and not (isinstance(value, str) and PLACEHOLDER.fullmatch(value)):
            problems.append(
                (at, "a secret is never written in the file; keep it in an environment variable and write ${NAME}")
            )
        for name in placeholders(value):
            if name not in os.environ:
                problems.append((at, f"the environment variable {name} is not set"))
    return problems


def _check_map(where: str, raw: Any, what: str) -> tuple[dict[str, str], Problems]:
    if raw is None:
        return {}, []
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in raw.items()
    ):
        return {}, [(where, f"must map catalogue field names to {what}")]
    return dict(raw), []


def _check_binding(record_type: Any, raw: Any) -> tuple[BindingSpec | None, Problems]:
    where = f"stores.{record_type}"
    if record_type not in RECORD_TYPES:
        return None, [(where, f"unknown record type; known: {', '.join(RECORD_TYPES)}")]
    if not isinstance(raw, dict):
        return None, [(where, "must be a mapping with at least a connector")]
    name = raw.get("connector")
    if not isinstance(name, str) or not name:
        return None, [(f"{where}.connector", "is required")]
    try:
        connector = connector_class(name)
    except UnknownConnector as error:
        return None, [(f"{where}.connector", str(error))]
    fields, problems = _check_map(f"{where}.fields", raw.get("fields"), "the system's own names")
    side_effects, side_problems = _check_map(
        f"{where}.side_effects", raw.get("side_effects"), "what the system does on a write of it"
    )
    problems += side_problems
    catalogue = RECORD_TYPES[record_type]
    for field_name, system_name in fields.items():
        if not catalogue.has_field(field_name):
            problems.append(
                (
                    f"{where}.fields.{field_name}",
                    f"not a field of {record_type}; its fields: {', '.join(catalogue.field_names)}",
                )
            )
        elif list(fields.values()).count(system_name) > 1:
            problems.append((f"{where}.fields.{field_name}", f"'{system_name}' is mapped from more than one field"))
    for field_name in side_effects:
        if field_name not in fields:
            problems.append((f"{where}.side_effects.{field_name}", "not a field this binding maps under fields"))
    settings = {key: value for key, value in raw.items() if key not in _BINDING_KEYS}
    problems += _check_settings(where, settings)
    problems += [
        (f"{where}.{key}", reason) for key, reason in connector.validate(settings, fields, record_type=record_type)
    ]
    spec = BindingSpec(
        record_type=record_type, connector=name, settings=settings, fields=fields, side_effects=side_effects
    )
    return spec, problems


def store_bindings_check(document: Any) -> list[BindingSpec]:
    """Check a whole stores file. Raises ValidationFailed listing every problem, each naming its key."""
    if not isinstance(document, dict) or not isinstance(document.get("stores", ()), dict | None):
        raise ValidationFailed(
            [("stores", "the file must hold a mapping of record types to stores under the key 'stores'")]
        )
    problems: Problems = [
        (str(key), "unknown top-level key; only 'stores' is read")
        for key in sorted(set(document) - {"stores"}, key=str)
    ]
    specs = []
    for record_type, raw in (document.get("stores") or {}).items():
        spec, found = _check_binding(record_type, raw)
        problems += found
        if spec is not None:
            specs.append(spec)
    if problems:
        raise ValidationFailed(problems)
    return specs


def _configuration(binding: StoreBinding | None) -> dict[str, Any]:
    if binding is None:
        return {"connector": BUILTIN}
    return {
        "connector": binding.connector,
        "settings": binding.settings,
        "fields": binding.fields,
        "side_effects": binding.side_effects,
    }


def store_bindings_write(*, specs: list[BindingSpec], actor: Actor) -> StoresLoadResult:
    """Make the bindings what `specs` say (checked by `store_bindings_check`): every record type not
    among them goes back to the built-in store. One transaction; loading the same file twice changes
    nothing and records nothing."""
    wanted = {spec.record_type: spec for spec in specs if spec.connector != BUILTIN}
    result = StoresLoadResult()
    events: list[EventData] = []
    with transaction.atomic():
        current = {binding.record_type: binding for binding in StoreBinding.objects.select_for_update()}
        for record_type in RECORD_TYPES:
            binding, spec = current.get(record_type), wanted.get(record_type)
            if spec is None and binding is None:
                continue
            if spec is not None and binding is not None and binding.digest == spec.digest:
                result.unchanged.append(record_type)
                continue
            before = _configuration(binding)
            after: dict[str, Any] = {"connector": BUILTIN} if spec is None else spec.configuration
            if spec is None:
                StoreBinding.objects.filter(record_type=record_type).delete()
                result.to_builtin.append(record_type)
            else:
                StoreBinding.objects.update_or_create(
                    record_type=record_type,
                    defaults={
                        "connector": spec.connector,
                        "settings": spec.settings,
                        "fields": spec.fields,
                        "side_effects": spec.side_effects,
                        "digest": spec.digest,
                        "configured_at": timezone.now(),
                        "checked_at": None,
                        "reachable": None,
                        "check_message": "",
                    },
                )
                (result.changed if binding is not None else result.bound).append(record_type)
            events.append(
                EventData(
                    action="store.configured", actor=actor, record_type=record_type, old_value=before, new_value=after
                )
            )
        audit_record_many(events)
        bindings_reload()
        transaction.on_commit(bindings_reload)
    return result


@dataclass(frozen=True)
class StoreCheckResult:
    record_type: str
    connector: str
    check: StoreCheck


def stores_check() -> list[StoreCheckResult]:
    """Check the store of every record type (see `ConnectedStore.check`), and record on each binding
    when, whether the store answered, and what it found or what is wrong."""
    bindings = {binding.record_type: binding for binding in StoreBinding.objects.all()}
    results = []
    for record_type in RECORD_TYPES:
        binding = bindings.get(record_type)
        if binding is None:
            results.append(
                StoreCheckResult(
                    record_type,
                    BUILTIN,
                    connector_class(BUILTIN)
                    .from_binding(record_type=record_type, settings={}, fields={}, side_effects={})
                    .check(record_type),
                )
            )
            continue
        as_read = Binding(
            binding.record_type,
            binding.connector,
            binding.settings,
            binding.fields,
            binding.side_effects,
            binding.digest,
        )
        try:
            check = binding_store(as_read).check(record_type)
        except StoreUnavailable as error:
            check = StoreCheck(reachable=False, problems=[("store", error.reason)])
        StoreBinding.objects.filter(pk=binding.pk).update(
            checked_at=timezone.now(), reachable=check.reachable, check_message=check.message[:2000]
        )
        results.append(StoreCheckResult(record_type, binding.connector, check))
    return results
