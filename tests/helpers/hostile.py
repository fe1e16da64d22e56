"""Hypothesis strategies for hostile text: the characters the API refuses (`core.text`), text that holds
them, text that does not, and JSON documents with refused text put in one of their strings."""

from typing import Any

from hypothesis import strategies as st

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
BIDI_CONTROLS = st.sampled_from([chr(code) for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]])
REFUSED_CHARACTERS = st.one_of(st.just("\x00"), SURROGATES, BIDI_CONTROLS)

# Everything else is text we take: other controls, right-to-left letters, the marks U+200E and
# U+200F, emoji (a surrogate pair in JSON, one character once decoded).
ACCEPTED_CHARACTERS = st.characters(
    codec="utf-8", exclude_characters="\x00\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def accepted_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Text the API takes, starting with a letter so that no field finds it blank."""
    return st.builds(lambda rest: "A" + rest, st.text(ACCEPTED_CHARACTERS, max_size=max_size))


def refused_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Accepted text with at least one refused character somewhere in it."""
    return st.builds(
        lambda before, character, after: before + character + after,
        accepted_text(max_size // 2),
        REFUSED_CHARACTERS,
        st.text(st.one_of(ACCEPTED_CHARACTERS, REFUSED_CHARACTERS), max_size=max_size // 2),
    )


# The last step of a path that names an object's key rather than the value under it.
KEY = object()


def _strings(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of each string in a JSON value, a key of an object included (its path ends with `KEY`)."""
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in [(*path, key, KEY), *_strings(item, (*path, key))]]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _strings(item, (*path, index))]
    return []


def _replaced(value: Any, path: tuple[Any, ...], text: str) -> Any:
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        if rest == (KEY,):
            return {(text if key == head else key): item for key, item in value.items()}
        return {key: (_replaced(item, rest, text) if key == head else item) for key, item in value.items()}
    return [_replaced(item, rest, text) if index == head else item for index, item in enumerate(value)]


def with_refused_text(value: Any) -> st.SearchStrategy[Any]:
    """Copies of the JSON `value` with one of its strings, a key or a value, made refused text."""
    paths = _strings(value)
    if not paths:
        return st.just(value)
    return st.builds(lambda path, text: _replaced(value, path, text), st.sampled_from(paths), refused_text())
