"""How much a person must write to say why, one rule per kind of reason.

A rejection, a stop, an undo or discarding a batch needs a few words; lifting a block needs a short sentence, because
the morning review reads it. Services check with these rules; forms and pages read `minimum` from
them (templates get them as `reasons`, see `context_processors`). The database holds the override
rule too, as a CHECK constraint on `Override.reason`.
"""

from dataclasses import dataclass

from core.errors import ValidationFailed


@dataclass(frozen=True)
class ReasonRule:
    minimum: int
    refusal: str  # what a person is told when their reason is too short; may name {minimum}
    field: str = "reason"

    def problem(self, text: str | None) -> tuple[str, str] | None:
        """(field, what to write) when `text` is too short; None when it will do."""
        if len((text or "").strip()) >= self.minimum:
            return None
        return self.field, self.refusal.format(minimum=self.minimum)

    @property
    def sentence(self) -> str:
        """The refusal as a page shows it next to its field: a sentence of its own."""
        text = self.refusal.format(minimum=self.minimum)
        return f"{text[:1].upper()}{text[1:]}."

    def clean(self, text: str | None) -> str:
        """`text` stripped, or ValidationFailed naming the field when it is too short."""
        if problem := self.problem(text):
            raise ValidationFailed([problem])
        return (text or "").strip()


REJECTION = ReasonRule(3, "a reason of at least {minimum} characters is required")
STOP = ReasonRule(3, "a reason is required to engage the stop switch")
UNDO = ReasonRule(3, "say why these changes are being undone (it is kept in the trail)")
DISCARD = ReasonRule(3, "say why the batch is discarded (it is kept in the trail)")
OVERRIDE = ReasonRule(10, "write at least {minimum} characters saying why this block should be lifted")
FORCE_STAGE = ReasonRule(
    10, "write at least {minimum} characters saying why the workflow moves on before its readiness checks pass"
)
OVERRIDE_FLAG = ReasonRule(10, "write at least {minimum} characters saying what is wrong", field="note")
