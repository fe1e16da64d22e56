"""Who may read `/metrics`: whoever presents the token the environment sets (METRICS_TOKEN), and
nobody else. A session counts for nothing here, not even a superuser's."""

import hmac
from enum import Enum

from django.conf import settings


class MetricsAccess(Enum):
    OFF = "off"  # no token is configured: the metrics are not served at all
    REFUSED = "refused"  # no token presented, or the wrong one
    GRANTED = "granted"


def metrics_access(*, authorization: str) -> MetricsAccess:
    """What the `Authorization` header of a scrape earns. The token is compared in constant time."""
    expected = settings.METRICS_TOKEN
    if not expected:
        return MetricsAccess.OFF
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return MetricsAccess.REFUSED
    if hmac.compare_digest(presented.strip().encode(), expected.encode()):
        return MetricsAccess.GRANTED
    return MetricsAccess.REFUSED
