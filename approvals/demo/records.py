"""Deterministic demo records, written as CSV and loaded through the import service, and read back
through the store bound to each record type."""

import csv
import io
import random

from records.store import RecordState, get_store

FIRST = [
    "Maria",
    "James",
    "Aisha",
    "Liam",
    "Sofia",
    "Noah",
    "Chloe",
    "Mateo",
    "Priya",
    "Ethan",
    "Hannah",
    "Kenji",
    "Olivia",
    "Lucas",
    "Fatima",
    "Oscar",
    "Isla",
    "Ravi",
    "Emma",
    "Jonas",
    "Niamh",
    "Tomasz",
    "Leila",
    "Dana",
]
LAST = [
    "Lopez",
    "Smith",
    "Khan",
    "Murphy",
    "Rossi",
    "Williams",
    "Dubois",
    "Garcia",
    "Patel",
    "Brown",
    "Schmidt",
    "Tanaka",
    "Wilson",
    "Martin",
    "Ali",
    "Nilsson",
    "Campbell",
    "Singh",
    "Taylor",
    "Berg",
    "Kelly",
    "Nowak",
    "Haddad",
    "Lee",
]
STREETS = [
    "Harbour Road",
    "Old Mill Lane",
    "Castle Street",
    "Queen's Drive",
    "Baker Street",
    "Victoria Terrace",
    "Station Road",
    "Church Lane",
    "Mill Wynd",
    "Park Avenue",
    "Rose Street",
    "Canal Walk",
]
TOWNS = ["Leith", "Edinburgh", "Glasgow", "Manchester", "Leeds", "Bristol", "York", "Cardiff", "Belfast", "Dundee"]
SUBJECTS = [
    "Where is my order?",
    "Change of delivery address",
    "Refund not received",
    "Item arrived damaged",
    "Wrong size delivered",
    "Cannot log in",
    "Invoice copy needed",
    "Cancel my order",
    "Duplicate charge",
    "Update my phone number",
    "Package left at wrong door",
    "Question about warranty",
]
TAGS = ["vip", "wholesale", "newsletter", "returning", "b2b", "gift"]

CUSTOMERS = 300
ORDERS = 420
TICKETS = 320


def _customer_id(n: int) -> str:
    return f"CUS-{10001 + n}"


DEMO_IDS = {
    "customer": [_customer_id(n) for n in range(CUSTOMERS)],
    "order": [f"ORD-{50001 + n}" for n in range(ORDERS)],
    "ticket": [f"T-{801 + n}" for n in range(TICKETS)],
}


def demo_records(record_type: str) -> list[RecordState]:
    """The demo's records of `record_type` as the store holds them now, ordered by record id."""
    found = get_store(record_type).fetch_many(record_type, DEMO_IDS[record_type])
    return [found[record_id] for record_id in sorted(found)]


def demo_records_present() -> bool:
    """Whether the store holds any record the demo would load."""
    return any(
        get_store(record_type).fetch_many(record_type, record_ids, fields=[])
        for record_type, record_ids in DEMO_IDS.items()
    )


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def customers_csv(rng: random.Random) -> str:
    rows = []
    for n in range(CUSTOMERS):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        rows.append(
            [
                DEMO_IDS["customer"][n],
                f"{first} {last}",
                f"{first}.{last}{n}@example.com".lower().replace("'", ""),
                f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}",
                f"{rng.randint(1, 180)} {rng.choice(STREETS)}, {rng.choice(TOWNS)}",
                rng.choices(["ok", "past_due", "refunded", "disputed"], weights=[85, 8, 5, 2])[0],
                rng.choices(["active", "verified", "high_risk", "closed"], weights=[60, 30, 5, 5])[0],
                rng.choice(["true", "false"]),
                rng.choices(["low", "normal", "high", "urgent"], weights=[20, 60, 15, 5])[0],
                rng.choice(["positive", "neutral", "negative"]),
                "|".join(sorted(rng.sample(TAGS, rng.randint(0, 2)))),
                rng.choice(["", "Prefers email.", "Called twice about delivery.", "Asked for invoices monthly."]),
                rng.choice(["", "Chargeback in 2025.", "Key account.", ""]),
            ]
        )
    header = [
        "record_id",
        "full_name",
        "email",
        "phone",
        "shipping_address",
        "billing_status",
        "account_status",
        "verified",
        "priority",
        "sentiment",
        "tags",
        "support_notes",
        "internal_notes",
    ]
    return _csv(header, rows)


def orders_csv(rng: random.Random) -> str:
    rows = []
    for n in range(ORDERS):
        rows.append(
            [
                DEMO_IDS["order"][n],
                _customer_id(rng.randrange(CUSTOMERS)),
                f"#{880000 + n}",
                f"{rng.randint(5, 900)}.{rng.randint(0, 99):02d}",
                rng.choices(["placed", "shipped", "delivered", "cancelled"], weights=[15, 20, 60, 5])[0],
                rng.choices(["none", "requested", "approved", "refunded"], weights=[85, 8, 3, 4])[0],
            ]
        )
    return _csv(["record_id", "customer", "order_number", "amount", "status", "refund_status"], rows)


def tickets_csv(rng: random.Random) -> str:
    rows = []
    for n in range(TICKETS):
        status = rng.choices(["open", "pending", "closed"], weights=[35, 20, 45])[0]
        rows.append(
            [
                DEMO_IDS["ticket"][n],
                _customer_id(rng.randrange(CUSTOMERS)),
                rng.choice(SUBJECTS),
                status,
                rng.choices(["low", "normal", "high", "urgent"], weights=[20, 55, 20, 5])[0],
                "Resolved by agent." if status == "closed" else "",
            ]
        )
    return _csv(["record_id", "customer", "subject", "status", "priority", "resolution_note"], rows)
