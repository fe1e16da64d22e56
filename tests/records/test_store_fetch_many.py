from records.store import RecordRef, fetch_refs
from tests.helpers.factories import CustomerFactory, OrderFactory


def test_fetch_refs_reads_several_records_in_one_query_per_type(db, django_assert_num_queries):
    customers = [CustomerFactory() for _ in range(3)]
    order = OrderFactory(customer=customers[0], amount="12.50")
    refs = [RecordRef("customer", c.record_id) for c in customers] + [
        RecordRef("order", order.record_id),
        RecordRef("customer", "CUS-404"),
        RecordRef("planet", "P-1"),
    ]
    with django_assert_num_queries(2):
        states = fetch_refs(refs)
    assert set(states) == set(refs[:4])
    assert states[refs[0]].values["full_name"] == customers[0].full_name
    assert states[refs[0]].title == customers[0].full_name
    assert states[refs[3]].values["customer"] == customers[0].record_id
    assert states[refs[3]].values["amount"] == "12.50"
    assert states[refs[3]].version == order.version
