"""The figures of `metrics_read` in Prometheus' text format, through prometheus-client.

The collector keeps nothing in memory between scrapes: each scrape reads the database afresh
(`metrics_read`, whose running totals live in the database too), so whichever gunicorn process
answers, the figures are the same. It lives in a registry of its own,
apart from prometheus-client's default one and its process metrics.
"""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from approvals.noticing.metrics import OUTCOMES, OVERRIDE_BLOCKS, STOP_SCOPES, Metrics, Waiting, metrics_read
from approvals.noticing.tallies import DURATION_BUCKETS, Histogram

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
VERSION_LABELS = ["workflow", "prompt_version"]


def _histogram_family(name: str, documentation: str, histograms: dict[tuple[str, str], Histogram]) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=VERSION_LABELS, unit="seconds")
    for version, histogram in sorted(histograms.items()):
        buckets = [
            (floatToGoString(bound), float(n)) for bound, n in zip(DURATION_BUCKETS, histogram.cumulative, strict=True)
        ]
        buckets.append(("+Inf", float(histogram.count)))
        family.add_metric(list(version), buckets, histogram.total_seconds)
    return family


def metric_families(metrics: Metrics) -> Iterator[Metric]:
    """Every metric family of one scrape, samples included, zeros too: a series that exists from the
    start lets a rate or an alert see its first change."""
    versions = metrics.versions
    proposals = CounterMetricFamily(
        "countersign_proposals",
        "Outcomes of proposals, by workflow, prompt version and outcome, since the trail began",
        labels=[*VERSION_LABELS, "outcome"],
    )
    for version in versions:
        counted = metrics.outcomes.get(version, {})
        for outcome in OUTCOMES:
            proposals.add_metric([*version, outcome], counted.get(outcome, 0))
    yield proposals

    yield _histogram_family(
        "countersign_decision_time",
        "Seconds from a proposal's submission to a person's decision (approve or reject)",
        metrics.decision_time,
    )
    yield _histogram_family(
        "countersign_apply_lag",
        "Seconds from a proposal's approval to its change being written to the record",
        metrics.apply_lag,
    )

    gauges = {
        "pending": GaugeMetricFamily(
            "countersign_proposals_pending", "Proposals waiting for a person's decision", labels=VERSION_LABELS
        ),
        "approved": GaugeMetricFamily(
            "countersign_proposals_approved_waiting",
            "Approved proposals not yet written (queued, held by a stop, a cap or a store)",
            labels=VERSION_LABELS,
        ),
        "oldest_pending_seconds": GaugeMetricFamily(
            "countersign_oldest_pending_age_seconds",
            "Age of the oldest proposal waiting for a person's decision (0 when none waits)",
            labels=VERSION_LABELS,
        ),
    }
    for version in versions:
        waiting = metrics.waiting.get(version, Waiting())
        for attribute, family in gauges.items():
            family.add_metric(list(version), getattr(waiting, attribute))
    yield from gauges.values()

    stops = GaugeMetricFamily(
        "countersign_stops_engaged",
        "Stop switches engaged, by scope and the workflow they hold (empty for the global switch)",
        labels=["scope", "workflow"],
    )
    stops.add_metric(["global", ""], metrics.stops.get(("global", ""), 0))
    for scope in STOP_SCOPES:
        if scope == "global":
            continue
        for slug in sorted(set(metrics.workflows) | {s for (sc, s) in metrics.stops if sc == scope}):
            stops.add_metric([scope, slug], metrics.stops.get((scope, slug), 0))
    yield stops

    overrides = GaugeMetricFamily(
        "countersign_overrides_in_force",
        "Overrides in force (granted, neither revoked nor expired), by workflow and the block they lift",
        labels=["workflow", "block"],
    )
    for slug in sorted(set(metrics.workflows) | {s for s, _ in metrics.overrides}):
        for block in OVERRIDE_BLOCKS:
            overrides.add_metric([slug, block], metrics.overrides.get((slug, block), 0))
    yield overrides

    stores = GaugeMetricFamily(
        "countersign_store_reachable",
        "1 while a record type's store answers, 0 while an outage is recorded or check_stores found it unreachable",
        labels=["record_type", "store"],
    )
    for state in metrics.stores:
        stores.add_metric([state.record_type, state.store], 1 if state.reachable else 0)
    yield stores

    yield GaugeMetricFamily(
        "countersign_metrics_unfolded_events",
        "Audit trail events not yet counted in the counters and histograms above (at most; 0 once caught up)",
        value=metrics.unfolded_events,
    )

    verified = GaugeMetricFamily(
        "countersign_audit_chain_verified_age_seconds",
        "Seconds since the scheduled verification last walked the audit chain (absent before its first run)",
    )
    if metrics.chain_verified_seconds is not None:
        verified.add_metric([], metrics.chain_verified_seconds)
    yield verified
    yield GaugeMetricFamily(
        "countersign_audit_chain_broken",
        "1 once the scheduled verification found the audit chain broken, else 0",
        value=1 if metrics.chain_broken else 0,
    )


class DatabaseCollector:
    """A prometheus-client collector whose every collect reads the database."""

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(metrics_read())


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(DatabaseCollector())


def metrics_exposition() -> bytes:
    """The scrape's body in Prometheus' text format."""
    return generate_latest(REGISTRY)
