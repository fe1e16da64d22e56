"""Reading a rendered page as a person does: which error messages it shows, and where."""

import html as html_module
import re
from typing import Any

_ERROR = re.compile(
    r'<(p|span|small|li)\b[^>]*class="[^"]*\berror\b[^"]*"[^>]*>(.*?)</\1>|<ul class="errorlist"[^>]*>(.*?)</ul>', re.S
)


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", html_module.unescape(re.sub(r"<[^>]+>", "", fragment))).strip()


def _content(page: Any) -> str:
    return page if isinstance(page, str) else page.content.decode()


def error_messages(page: Any) -> list[str]:
    """Every error message the page shows, in order."""
    return [_text(match.group(2) or match.group(3)) for match in _ERROR.finditer(_content(page))]


def error_after(page: Any, element_id: str) -> str:
    """The first error message after the element with this id: the one shown next to that field."""
    content = _content(page)
    start = content.index(f'id="{element_id}"')
    match = _ERROR.search(content, start)
    assert match is not None, f"no error message after #{element_id}"
    return _text(match.group(2) or match.group(3))


def text_of(page: Any, element_id: str | None = None) -> str:
    """The words a person reads on the page (or in the element with this id, up to its closing tag's
    next sibling of the same kind), tags dropped and spaces folded."""
    content = _content(page)
    if element_id is not None:
        match = re.search(rf'<(\w+)\b[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', content, re.S)
        assert match is not None, f"no element #{element_id}"
        content = match.group(2)
    return _text(content)
