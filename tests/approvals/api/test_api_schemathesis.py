"""Schemathesis over the OpenAPI document: no 5xx, and every answer matches the schema it documents.

Bounded (a few examples per operation, derandomised) so the suite stays fast and repeatable.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from approvals.models import RetentionRule
from config.wsgi import application
from tests.helpers.factories import CustomerFactory
from tests.helpers.hostile import with_refused_text
from tests.helpers.pipeline import proposal_body


@contextmanager
def connection_kept_open() -> Iterator[None]:
    """Called as a WSGI app, Django closes the database connection around each request; in a test that
    would end the test's transaction. Django's test client does the same as this, per request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12


@pytest.fixture
def contract_pipeline(pipeline):  # type: ignore[no-untyped-def]
    """The pipeline with a record, a retention rule, a proposal and a batch for the generated calls to find."""
    CustomerFactory(record_id="CUS-10432")
    RetentionRule.objects.create(
        workflow=pipeline.workflow,
        kind="prompt",
        bucket="live",
        window=timedelta(days=7),
        owner=pipeline.workflow.owner,
    )
    pipeline.post("/api/v1/proposals", proposal_body())
    pipeline.post("/api/v1/batches", {"name": "n", "run_id": "r", "expected_size": 1})
    return pipeline


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_its_documented_contract(contract_pipeline, mode):
    with connection_kept_open():
        run_schemathesis(contract_pipeline.token, mode)


def test_refused_text_in_any_string_of_a_body_gets_a_documented_answer(contract_pipeline):
    """Valid bodies with one string, a key or a value, made hostile text (tests.helpers.hostile)."""
    with connection_kept_open():
        run_schemathesis(contract_pipeline.token, GenerationMode.POSITIVE, refused_text=True)


def run_schemathesis(token: str, mode: GenerationMode, *, refused_text: bool = False) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    if refused_text:

        @schema.hook
        def flatmap_body(context, body):  # type: ignore[no-untyped-def]
            return with_refused_text(body)

    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])
    headers = {"Authorization": f"Bearer {token}"}
    results = list(schema.get_all_operations())
    assert [result.err() for result in results if isinstance(result, Err)] == []
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    tried: set[str] = set()
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, checks=checks)
            tried.add(case.operation.label)

        try:
            call()
        except Unsatisfiable:
            # Nothing in this operation can be made invalid (no parameters, no body): nothing to try.
            assert mode == GenerationMode.NEGATIVE
    assert len(tried) >= 9, tried
