"""The seed's five steps of a workflow review, and the ticks that say each was done.

A review's `steps` hold one tick per key below: who ticked it and when. Step 2 is ticked by marking
the fields; step 4 is four ticks, one per part of the walk, each by the person who did that part;
step 5 is the decision itself.
"""

from dataclasses import dataclass

TASKS = "tasks"
FIELDS = "fields"
RETENTION = "retention"
WALK_PREFIX = "walk."


@dataclass(frozen=True)
class WalkPart:
    key: str
    label: str
    says: str  # what the person ticking it says they did

    @property
    def verb(self) -> str:
        return f"Tick {self.label.lower()}"


WALK_PARTS = (
    WalkPart(
        f"{WALK_PREFIX}approval", "Approval", "I approved this change, or checked its approval, on its review page"
    ),
    WalkPart(f"{WALK_PREFIX}write", "Write", "I checked the record now holds what was approved"),
    WalkPart(f"{WALK_PREFIX}trace", "Trace", "I traced the change: what, why, who approved it"),
    WalkPart(f"{WALK_PREFIX}rollback", "Rollback", "I undid the change and checked the record came back"),
)
ROLLBACK = WALK_PARTS[-1].key

# Every tick a review needs before it may be decided, in the order of the steps, with the step it
# belongs to as a person reads it.
TICKS: dict[str, str] = {
    TASKS: "step 1 (AI tasks touching the record)",
    FIELDS: "step 2 (fields marked)",
    RETENTION: "step 3 (retention checked)",
    **{part.key: f"step 4 ({part.label.lower()})" for part in WALK_PARTS},
}
# The ticks given with a button of their own; step 2 is ticked by marking the fields.
TICKED_BY_BUTTON = frozenset(TICKS) - {FIELDS}

# What a review may mark a field; "none" is a field the workflow should not see at all.
NO_ACCESS = "none"
MARKS: dict[str, str] = {NO_ACCESS: "no access", "read": "read", "suggest": "suggest", "write": "write"}


def ticks_missing(steps: dict[str, object]) -> list[str]:
    """The ticks a review still lacks, as a person reads them, in the order of the steps."""
    return [label for key, label in TICKS.items() if key not in steps]


def sign_off_waits_for(*, signer_ids: list[int], owner_id: int, owner_name: str) -> str:
    """What a review's sign-off still needs: two different people, one of them the workflow's owner.
    "" once it has both."""
    others = [signer for signer in dict.fromkeys(signer_ids) if signer != owner_id]
    owner_signed = owner_id in signer_ids
    if owner_signed and others:
        return ""
    if owner_signed:
        return "a second person's signature"
    if others:
        return f"the workflow owner, {owner_name}"
    return f"two signatures, one of them the workflow owner's ({owner_name})"
