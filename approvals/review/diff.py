"""Word and list diffs between a field's current and proposed values."""

import difflib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DiffPiece:
    kind: str  # "same", "removed" or "added"
    text: str


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def word_diff(old: str, new: str) -> list[DiffPiece]:
    """The word-level difference between two texts, as pieces kept, removed and added, in order."""
    before, after = _TOKEN.findall(old or ""), _TOKEN.findall(new or "")
    pieces: list[DiffPiece] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pieces.append(DiffPiece("same", "".join(before[i1:i2])))
            continue
        if tag in ("replace", "delete"):
            pieces.append(DiffPiece("removed", "".join(before[i1:i2])))
        if tag in ("replace", "insert"):
            pieces.append(DiffPiece("added", "".join(after[j1:j2])))
    return pieces


def list_diff(old: list[str], new: list[str]) -> list[DiffPiece]:
    old_items, new_items = list(old or []), list(new or [])
    pieces = [DiffPiece("same" if item in new_items else "removed", item) for item in old_items]
    pieces += [DiffPiece("added", item) for item in new_items if item not in old_items]
    return pieces
