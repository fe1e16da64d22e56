"""Secrets stay in the environment: `${NAME}` placeholders in a binding's settings.

A stores file names its secrets (a database URL, an API token) as `${NAME}`; the binding keeps the
placeholder, and the store reads the variable when it is built, in the process that uses it.
"""

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingVariable(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"the environment variable {name} is not set")
        self.name = name


def placeholders(value: Any) -> list[str]:
    """The variable names `value` (a string, or a dict or list of them) refers to, in order."""
    if isinstance(value, str):
        return PLACEHOLDER.findall(value)
    if isinstance(value, Mapping):
        return [name for item in value.values() for name in placeholders(item)]
    if isinstance(value, list):
        return [name for item in value for name in placeholders(item)]
    return []


def expand(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """`value` with every placeholder replaced by its variable. Raises MissingVariable."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):

        def variable(match: re.Match[str]) -> str:
            try:
                return env[match.group(1)]
            except KeyError:
                raise MissingVariable(match.group(1)) from None

        return PLACEHOLDER.sub(variable, value)
    if isinstance(value, Mapping):
        return {key: expand(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, env) for item in value]
    return value


def has_literal_password(value: str) -> bool:
    """Whether `value` is a URL that carries a password written out, rather than as a placeholder
    (`postgres://crm:secret@db/crm` does; `${CRM_DATABASE_URL}` and `postgres://crm:${CRM_PASSWORD}@db/crm`
    do not)."""
    if "://" not in value:
        return False
    try:
        password = urlsplit(PLACEHOLDER.sub("placeholder", value)).password
    except ValueError:
        return False
    if not password:
        return False
    userinfo = value.split("://", 1)[1].split("@", 1)[0]
    written = userinfo.split(":", 1)[1] if ":" in userinfo else ""
    return not PLACEHOLDER.fullmatch(written)
