"""Text we accept, and how text we would not accept is shown: one rule for the characters that break
or disguise what a string says.

Three kinds of character are refused wherever a pipeline sends text, and escaped wherever a page
or an export prints text that holds them (stored before the refusal, or read from a record store):

- NUL, which PostgreSQL cannot store and which cuts a string short in C libraries;
- a lone surrogate (U+D800 to U+DFFF), half of a UTF-16 pair: not a character at all, so UTF-8
  cannot encode it, PostgreSQL refuses it and a page that prints it cannot be sent;
- bidirectional controls (U+202A to U+202E, U+2066 to U+2069), which make text read in an order
  other than the one it is stored in: a reviewer would approve something other than what they see.
"""

import re

_REFUSED = re.compile("[\x00\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _kind(character: str) -> str:
    if character == "\x00":
        return "a NUL character"
    if "\ud800" <= character <= "\udfff":
        return "a lone surrogate, which is not Unicode text"
    return "a bidirectional control character, which makes text read out of order"


def refused_character(text: str) -> str | None:
    """The first character of `text` we refuse, described for the one who sent it, or None."""
    found = _REFUSED.search(text)
    if found is None:
        return None
    code = f"U+{ord(found.group()):04X} at character {found.start() + 1}"
    return f"{_kind(found.group())} ({code})"


def text_problem(text: str) -> str | None:
    """Why `text` is not text we accept, as the end of "<field> ...", or None when it is."""
    character = refused_character(text)
    return f"must not contain {character}" if character else None


def _escape(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group()):04x}"


def escape_refused(text: str) -> str:
    """`text` with each character we refuse written as its escape, `\\udfff`, so it can be shown and sent.

    The escape is JSON's own: applied to JSON text, it leaves the value the JSON holds unchanged.
    """
    return _REFUSED.sub(_escape, text)
