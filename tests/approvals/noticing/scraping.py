"""Scraping `/metrics` as Prometheus would, and reading one sample of what it answered."""

from dataclasses import dataclass

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "scrape-token-7f3a9c"  # noqa: S105


@dataclass(frozen=True)
class Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def of(cls, text: str) -> "Scrape":
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples)

    def value(self, name: str, **labels: str) -> float | None:
        """The sample `name` with exactly these labels, or None when the scrape holds none."""
        return self.samples.get((name, frozenset(labels.items())))

    def number(self, name: str, **labels: str) -> float:
        """The sample `name` with exactly these labels, which the scrape must hold."""
        value = self.value(name, **labels)
        assert value is not None, f"no sample {name} {labels}"
        return value


def scrape(client: Client | None = None) -> Scrape:
    response = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return Scrape.of(response.content.decode())
