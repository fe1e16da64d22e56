"""The API tests' pipeline and the customer its proposals change."""

import pytest

from tests.helpers.factories import CustomerFactory
from tests.helpers.pipeline import Pipeline, make_pipeline, make_workflow


@pytest.fixture
def pipeline(db) -> Pipeline:  # type: ignore[no-untyped-def]
    return make_pipeline(make_workflow())


@pytest.fixture
def customer(db):  # type: ignore[no-untyped-def]
    return CustomerFactory(record_id="CUS-10432", shipping_address="4 Old Mill Lane, Leith", email="maria@example.com")
