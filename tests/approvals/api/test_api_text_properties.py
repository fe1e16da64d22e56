"""Properties of the text rule over generated text: refused text in any text field is a 422 naming that
field, accepted text there is taken (201), alone or in a batch, keyed or not; never a 500."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.text import text_problem
from tests.helpers.hostile import accepted_text, refused_text
from tests.helpers.pipeline import proposal_body

# Fields that take any accepted text, and how a proposal body holds text there.
FREE_TEXT: dict[str, Callable[[str], dict[str, Any]]] = {
    "reason": lambda text: proposal_body(reason=text),
    "changes.shipping_address": lambda text: proposal_body(changes={"shipping_address": text}),
    "base.shipping_address": lambda text: proposal_body(base={"shipping_address": text}),
    "model.name": lambda text: proposal_body(model={"name": text, "version": "1"}),
    "model.version": lambda text: proposal_body(model={"name": "gpt-x", "version": text}),
    "prompt_version": lambda text: proposal_body(prompt_version=text),
    "run_id": lambda text: proposal_body(run_id=text),
}
TEXT = st.one_of(accepted_text(), refused_text())
# Derandomised, as the contract test is, so that every run tries the same examples.
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@EXAMPLES
@given(field=st.sampled_from(sorted(FREE_TEXT)), text=TEXT, keyed=st.booleans())
def test_text_in_a_proposal_is_taken_or_refused_naming_its_field(pipeline, customer, field, text, keyed):
    headers = {"Idempotency-Key": str(uuid.uuid4())} if keyed else {}
    response = pipeline.post("/api/v1/proposals", FREE_TEXT[field](text), **headers)
    if text_problem(text):
        assert response.status_code == 422, response.content
        assert [error["field"] for error in response.json()["errors"]] == [field]
    else:
        assert response.status_code == 201, response.content


@pytest.fixture
def batch_id(pipeline, customer):  # type: ignore[no-untyped-def]
    return pipeline.post("/api/v1/batches", {"name": "Nightly", "run_id": "run-1", "expected_size": 5}).json()["id"]


@EXAMPLES
@given(items=st.lists(st.tuples(st.sampled_from(sorted(FREE_TEXT)), TEXT), min_size=1, max_size=6))
def test_in_a_batch_each_item_is_answered_by_its_own_text(pipeline, batch_id, items):
    response = pipeline.post(f"/api/v1/batches/{batch_id}/proposals", [FREE_TEXT[f](text) for f, text in items])
    assert response.status_code == 200, response.content
    for (field, text), result in zip(items, response.json()["results"], strict=True):
        if text_problem(text):
            assert result["status_code"] == 422
            assert [error["field"] for error in result["body"]["errors"]] == [field]
        else:
            assert result["status_code"] == 201, result
