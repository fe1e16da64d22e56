"""Where the trail links to. The pages about records, changes and proposals live in higher layers;
they register their URL names here when their app is ready, so the trail links to them without
importing them."""

from functools import lru_cache

from django.urls import NoReverseMatch, reverse

_url_names: dict[str, str] = {}


def register(kind: str, url_name: str) -> None:
    """`kind` is "record" (args: record_type, record_id), "change" (change id) or "proposal" (proposal id)."""
    _url_names[kind] = url_name
    link_for.cache_clear()


# A page of the trail links to the same few records and changes many times over.
@lru_cache(maxsize=4096)
def link_for(kind: str, *args: object) -> str:
    """The URL of the page about `kind` with these ids, or "" when no app shows such a page."""
    url_name = _url_names.get(kind)
    if url_name is None or any(arg in (None, "") for arg in args):
        return ""
    try:
        return reverse(url_name, args=[str(arg) for arg in args])
    except NoReverseMatch:
        return ""
