"""What the apply and rollback benchmarks share: a scratch database, and a batch of AI address changes."""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

OLD_ADDRESS = "4 Old Mill Lane"


def scratch_database(url: str, suffix: str) -> tuple[str, str, str]:
    """The scratch database next to the one `url` names: (its url, the admin url, its name)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SystemExit("this benchmark needs DATABASE_URL=postgres://...")
    name = parts.path.lstrip("/") + suffix
    return urlunsplit(parts._replace(path=f"/{name}")), urlunsplit(parts._replace(path="/postgres")), name


def recreate(admin_url: str, name: str, *, create: bool = True) -> None:
    """Drop the database `name` (closing its connections), and create it afresh unless told not to."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            admin.execute(f'CREATE DATABASE "{name}"')


def address_batch(  # type: ignore[no-untyped-def]
    workflow,
    label: str,
    first_number: int,
    count: int,
    *,
    customer: Callable[[int], dict[str, Any]] | None,
    **proposal: Any,
):
    """A batch of `count` customers CUS-<n> from `first_number` on, with the fields `customer(n)` gives,
    each with one proposal moving them off OLD_ADDRESS, with `proposal`'s fields too; the workflow may
    suggest the address, as intake needs. With `customer` None the customers are not made here (they
    live in another store). Returns the batch and its proposals."""
    from django.utils import timezone

    from approvals.models import Batch, FieldPolicy, Proposal
    from records.models import Customer

    FieldPolicy.objects.get_or_create(
        workflow=workflow, record_type="customer", field="shipping_address", defaults={"access": "suggest"}
    )

    batch = Batch.objects.create(workflow=workflow, name=label, run_id=f"bench-{label}", expected_size=count)
    numbers = range(first_number, first_number + count)
    if customer is not None:
        Customer.objects.bulk_create(
            (Customer(record_id=f"CUS-{n}", full_name=f"Customer {n}", **customer(n)) for n in numbers),
            batch_size=2000,
        )
    now = timezone.now()
    proposals = Proposal.objects.bulk_create(
        (
            Proposal(
                workflow=workflow,
                batch=batch,
                record_type="customer",
                record_id=f"CUS-{n}",
                action="update",
                changes={"shipping_address": f"{n} Harbour Road"},
                base={"shipping_address": OLD_ADDRESS},
                reason="bench",
                confidence=0.9,
                model_name="bench",
                model_version="1",
                prompt_version="bench@1",
                approved_at=now,
                updated_at=now,
                **proposal,
            )
            for n in numbers
        ),
        batch_size=2000,
    )
    return batch, proposals
