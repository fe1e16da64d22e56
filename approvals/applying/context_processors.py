from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from approvals.overrides.selectors import store_waits


def store_outages(request: HttpRequest) -> dict:
    """`store_outages` for base.html's banner: each store that does not answer, and how many approved
    changes wait on it. Read only when a page renders the banner, for a person signed in."""
    return {
        "store_outages": SimpleLazyObject(
            lambda: store_waits(workflow_ids=None) if request.user.is_authenticated else []
        )
    }
