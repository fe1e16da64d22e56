"""The errors that services raise. Views and the API translate them; nothing else does.

The API names each field in its problem document. A page shows a problem next to the field it is
about (`on_fields`) and the rest in plain words (`plain`), never with the code's field names.
"""

from collections.abc import Collection
from typing import Any


def _joined(texts: list[str]) -> str:
    return "; ".join(dict.fromkeys(texts))


class ApplicationError(Exception):
    """A domain rule refused an action. `message` is safe to show to the caller."""

    status_code = 400
    title = "Request refused"

    def __init__(self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}

    @property
    def errors(self) -> list[dict[str, str]]:
        return [{"field": self.field, "message": self.message}] if self.field else []

    def problems_shown(self) -> list[tuple[str | None, str]]:
        """(field or None, what is wrong) for each problem, in the words a page shows."""
        return [(self.field, self.message)]

    @property
    def plain(self) -> str:
        """The whole refusal as a page says it: in plain words, without the code's field names."""
        return _joined([text for _, text in self.problems_shown()])

    def on_fields(self, shown: Collection[str]) -> tuple[dict[str, str], str]:
        """What a page with these fields says: the problem of each field it shows, to go next to that
        field, and the rest in plain words ("" when nothing is left)."""
        by_field: dict[str, list[str]] = {}
        rest: list[str] = []
        for field, text in self.problems_shown():
            if field is not None and field in shown:
                by_field.setdefault(field, []).append(text)
            else:
                rest.append(text)
        return {field: _joined(texts) for field, texts in by_field.items()}, _joined(rest) if rest else ""


class ValidationFailed(ApplicationError):
    """Input did not pass validation. Carries every problem found, each naming its field."""

    status_code = 422
    title = "Validation failed"

    def __init__(self, problems: list[tuple[str, str]], *, extra: dict[str, Any] | None = None) -> None:
        self.problems = problems
        message = "; ".join(f"{field}: {text}" for field, text in problems)
        super().__init__(message, field=problems[0][0] if problems else None, extra=extra)

    @property
    def errors(self) -> list[dict[str, str]]:
        return [{"field": field, "message": text} for field, text in self.problems]

    def problems_shown(self) -> list[tuple[str | None, str]]:
        return list(self.problems)


class NotFound(ApplicationError):
    status_code = 404
    title = "Not found"


class NotAllowed(ApplicationError):
    """The policy does not allow this actor to do this (a field, an action, a lane)."""

    status_code = 403
    title = "Not allowed"


class InvalidTransition(ApplicationError):
    """The object is not in a state that allows this step (already decided, stale, ...)."""

    status_code = 409
    title = "Invalid transition"


class Halted(ApplicationError):
    """A stop switch or a halted batch refuses new work."""

    status_code = 409
    title = "Halted"


class Locked(ApplicationError):
    """The workflow is paused or stopped."""

    status_code = 423
    title = "Locked"


class TooLarge(ApplicationError):
    status_code = 413
    title = "Too large"
