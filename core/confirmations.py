"""A question a page asks before a step that is not lightly taken back, in words that name what
will happen ("Delete customer CUS-10432?"), and the answer the page must send to go ahead.

The page that offers the step asks it in a dialog (`static/js/confirm.js`); without JavaScript the
server, finding no answer, shows the same question as a second step. The answer names what was
confirmed (the action, or how many), so a confirmation of 30 is not taken for 31.
"""

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Confirmation:
    question: str  # what will happen, as a question: "Approve 30 shipping address changes in batch 12?"
    detail: str  # what follows from it, or can be done after
    verb: str  # the confirm button: "Approve 30"
    answer: str  # what the confirm button sends as `confirmed`

    def given(self, params: Mapping[str, str]) -> bool:
        """Whether the form sent this question's answer."""
        return params.get("confirmed") == self.answer
