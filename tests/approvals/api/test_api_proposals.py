"""POST /api/v1/proposals: every refusal names its field, and the outcome follows the workflow's stage and policy."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import Proposal, ProposalStatus, StopScope
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Customer
from tests.helpers.factories import CustomerFactory, OrderFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body


def refused(response, status: int, field: str | None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
    assert Proposal.objects.count() == 0
    assert not AuditEvent.objects.filter(action="proposal.submitted").exists()
    return body


def test_a_proposal_is_accepted_pending_with_its_review_url(pipeline, customer):
    response = pipeline.post("/api/v1/proposals", proposal_body())
    assert response.status_code == 201
    answer = response.json()
    proposal = Proposal.objects.get()
    assert answer == {"id": proposal.pk, "status": "pending", "review_url": f"http://testserver/review/{proposal.pk}/"}
    assert proposal.workflow == pipeline.workflow
    assert proposal.service_account == pipeline.account
    assert proposal.changes == {"shipping_address": "12 Harbour Road, Leith"}
    assert proposal.base == {"shipping_address": "4 Old Mill Lane, Leith"}
    assert (proposal.model_name, proposal.model_version, proposal.prompt_version) == (
        "gpt-x",
        "2026-10-01",
        "address-update@7",
    )
    assert proposal.requested_by == "maria.lopez"
    assert proposal.requested_by_user_id == UserFactory(username="maria.lopez").pk
    assert proposal.follow_ups == [{"kind": "email_customer", "params": {"template": "address-confirmed"}}]
    event = AuditEvent.objects.get(action="proposal.submitted")
    assert event.proposal_id == proposal.pk
    assert (event.record_type, event.record_id, event.workflow_slug) == ("customer", "CUS-10432", "address-updates")
    assert event.new_value == {"shipping_address": "12 Harbour Road, Leith"}
    assert event.reason == "Customer asked for the new address in ticket T-881"
    assert event.actor_kind == "service_account"


def test_the_review_url_follows_the_requests_host(pipeline, customer):
    response = pipeline.client.post(
        "/api/v1/proposals",
        proposal_body(),
        content_type="application/json",
        headers=pipeline.headers(),
        HTTP_HOST="countersign.example.com",
    )
    assert response.json()["review_url"].startswith("http://countersign.example.com/review/")


def test_requested_by_links_the_person_when_they_exist(pipeline, customer):
    agent = UserFactory(username="agent")
    pipeline.post("/api/v1/proposals", proposal_body(requested_by="agent"))
    assert Proposal.objects.get().requested_by_user == agent


def test_without_a_key_every_post_is_a_new_proposal(pipeline, customer):
    first = pipeline.post("/api/v1/proposals", proposal_body()).json()
    second = pipeline.post("/api/v1/proposals", proposal_body()).json()
    assert first["id"] != second["id"]
    assert Proposal.objects.count() == 2


def test_a_write_policy_change_is_approved_at_once_without_review(pipeline, customer):
    sent = proposal_body(changes={"priority": "high", "tags": ["vip"]}, base={"priority": "normal"}, follow_ups=[])
    response = pipeline.post("/api/v1/proposals", sent)
    assert response.json()["status"] == "approved"
    proposal = Proposal.objects.get()
    assert proposal.status == ProposalStatus.APPROVED
    assert proposal.approved_at is not None
    assert proposal.decided_by is None
    approved = AuditEvent.objects.get(action="proposal.approved")
    assert approved.approver_label == "policy (write access)"
    assert approved.proposal_id == proposal.pk


def waits_for_a_person(response) -> None:  # type: ignore[no-untyped-def]
    assert response.json()["status"] == "pending"
    assert Proposal.objects.get(pk=response.json()["id"]).status == ProposalStatus.PENDING
    assert not AuditEvent.objects.filter(action="proposal.approved").exists()


def test_a_mix_of_write_and_suggest_fields_waits_for_a_person(pipeline, customer):
    sent = proposal_body(changes={"priority": "high", "shipping_address": "1 New Street"})
    waits_for_a_person(pipeline.post("/api/v1/proposals", sent))


def test_write_fields_in_a_canary_workflow_are_approved_too(db, customer):
    pipeline = make_pipeline(make_workflow(stage="canary"))
    response = pipeline.post("/api/v1/proposals", proposal_body(changes={"priority": "low"}, follow_ups=[]))
    assert response.json()["status"] == "approved"
    assert Proposal.objects.get(pk=response.json()["id"]).status == ProposalStatus.APPROVED
    assert AuditEvent.objects.get(action="proposal.approved").approver_label == "policy (write access)"


def test_a_two_person_field_is_never_approved_without_review(db, customer):
    pipeline = make_pipeline(make_workflow(two_person_fields=["priority"]))
    waits_for_a_person(pipeline.post("/api/v1/proposals", proposal_body(changes={"priority": "low"})))


def test_a_shadow_workflow_records_and_never_applies(db, customer, queued, django_capture_on_commit_callbacks):
    pipeline = make_pipeline(make_workflow(stage="shadow"))
    with django_capture_on_commit_callbacks(execute=True):
        response = pipeline.post("/api/v1/proposals", proposal_body(changes={"priority": "urgent"}))
    assert response.status_code == 201
    assert response.json()["status"] == "shadowed"
    assert Proposal.objects.get().status == ProposalStatus.SHADOWED
    assert AuditEvent.objects.filter(action="proposal.shadowed").count() == 1
    assert queued == []
    customer.refresh_from_db()
    assert (customer.priority, customer.version) == ("normal", 1)


@pytest.mark.parametrize("stage", ["paused", "draft"])
def test_a_paused_or_draft_workflow_is_423(db, customer, stage):
    pipeline = make_pipeline(make_workflow(stage=stage))
    body = refused(pipeline.post("/api/v1/proposals", proposal_body()), 423, None)
    assert stage in body["detail"]


def test_an_assist_workflow_only_reads_and_drafts(db, customer):
    pipeline = make_pipeline(make_workflow(lane="assist", actions=[]))
    body = refused(pipeline.post("/api/v1/proposals", proposal_body()), 403, None)
    assert "only reads and drafts" in body["detail"]
    assert "artifacts" in body["detail"]


@pytest.mark.parametrize("scope", [StopScope.WORKFLOW, StopScope.GLOBAL])
def test_a_stopped_workflow_is_423(pipeline, customer, scope):
    stop_engage(scope=scope, reason="bad prompt", actor=Actor.system(), workflow=pipeline.workflow)
    body = refused(pipeline.post("/api/v1/proposals", proposal_body()), 423, None)
    assert "stop switch" in body["detail"]


def test_an_unknown_record_is_404_naming_record_id(pipeline, customer):
    body = refused(pipeline.post("/api/v1/proposals", proposal_body(record_id="CUS-99999")), 404, "record_id")
    assert "CUS-99999" in body["detail"]


def test_a_record_type_outside_the_policy_is_403_naming_record_type(pipeline):
    order = OrderFactory()
    sent = proposal_body(record_type="order", record_id=order.record_id, changes={"status": "shipped"}, base={})
    refused(pipeline.post("/api/v1/proposals", sent), 403, "record_type")


def test_an_action_outside_the_workflow_is_403_naming_action(pipeline, customer):
    body = refused(pipeline.post("/api/v1/proposals", proposal_body(action="delete", changes={})), 403, "action")
    assert "may not delete" in body["detail"]


def test_changing_a_read_only_field_is_403_naming_it(pipeline, customer):
    body = refused(pipeline.post("/api/v1/proposals", proposal_body(changes={"email": "new@example.com"})), 403, None)
    assert [e["field"] for e in body["errors"]] == ["changes.email"]


def test_changing_a_field_with_no_policy_is_403_naming_it(pipeline, customer):
    sent = proposal_body(changes={"internal_notes": "x", "billing_status": "ok"})
    body = refused(pipeline.post("/api/v1/proposals", sent), 403, None)
    assert [e["field"] for e in body["errors"]] == ["changes.internal_notes", "changes.billing_status"]


def test_an_unknown_field_is_422_naming_it(pipeline, customer):
    refused(pipeline.post("/api/v1/proposals", proposal_body(changes={"nickname": "Mo"})), 422, "changes.nickname")


def test_a_value_outside_the_choices_is_422_naming_the_field(pipeline, customer):
    body = refused(pipeline.post("/api/v1/proposals", proposal_body(changes={"priority": "extreme"})), 422, None)
    assert body["errors"] == [
        {"field": "changes.priority", "message": "'extreme' is not one of low, normal, high, urgent"}
    ]


def test_a_value_of_the_wrong_type_is_422_naming_the_field(pipeline, customer):
    refused(pipeline.post("/api/v1/proposals", proposal_body(changes={"tags": "vip"})), 422, "changes.tags")


def test_an_update_without_changes_is_422(pipeline, customer):
    refused(pipeline.post("/api/v1/proposals", proposal_body(changes={})), 422, "changes")


def test_base_naming_an_unreadable_field_is_403_naming_it(pipeline, customer):
    sent = proposal_body(base={"shipping_address": "4 Old Mill Lane, Leith", "internal_notes": "x"})
    refused(pipeline.post("/api/v1/proposals", sent), 403, "base.internal_notes")


def test_base_of_the_wrong_type_is_422(pipeline, customer):
    refused(pipeline.post("/api/v1/proposals", proposal_body(base={"tags": "vip"})), 422, "base.tags")


def test_base_takes_what_a_record_holds_for_an_empty_field(pipeline, customer):
    sent = proposal_body(base={"shipping_address": "4 Old Mill Lane, Leith", "email": "", "phone": None})
    assert pipeline.post("/api/v1/proposals", sent).status_code == 201
    assert Proposal.objects.get().base == {"shipping_address": "4 Old Mill Lane, Leith", "email": "", "phone": ""}


@pytest.mark.parametrize(
    ("base", "field", "message"),
    [
        ({"priority": "extreme"}, "base.priority", "'extreme' is not one of low, normal, high, urgent"),
        ({"email": "not-an-email"}, "base.email", "'not-an-email' is not a valid email address"),
        ({"full_name": None}, "base.full_name", "must not be null"),
        ({"tags": ""}, "base.tags", "must be a list of strings"),
    ],
)
def test_base_is_cleaned_as_the_catalogue_says_naming_the_field(pipeline, customer, base, field, message):
    body = refused(pipeline.post("/api/v1/proposals", proposal_body(base=base)), 422, None)
    assert body["errors"] == [{"field": field, "message": message}]


def test_a_negative_amount_seen_in_base_is_422_as_it_is_in_changes(db):
    orders = make_pipeline(make_workflow(policies={("order", "amount"): "read", ("order", "status"): "suggest"}))
    order = OrderFactory(status="placed")
    sent = proposal_body(
        record_type="order",
        record_id=order.record_id,
        changes={"status": "shipped"},
        base={"amount": "-3"},
        follow_ups=[],
    )
    body = refused(orders.post("/api/v1/proposals", sent), 422, None)
    assert body["errors"] == [{"field": "base.amount", "message": "must be between 0 and 99999999.99"}]


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_empty_reason_is_422(pipeline, customer, reason):
    refused(pipeline.post("/api/v1/proposals", proposal_body(reason=reason)), 422, "reason")


def test_a_missing_reason_is_422(pipeline, customer):
    refused(pipeline.post("/api/v1/proposals", proposal_body(reason=...)), 422, "reason")


@pytest.mark.parametrize("confidence", [-0.01, 1.01, 7])
def test_confidence_outside_0_to_1_is_422(pipeline, customer, confidence):
    refused(pipeline.post("/api/v1/proposals", proposal_body(confidence=confidence)), 422, "confidence")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"model": {"name": "", "version": "1"}}, "model.name"),
        ({"model": {"name": "gpt-x", "version": " "}}, "model.version"),
        ({"model": {"name": "gpt-x"}}, "model.version"),
        ({"model": ...}, "model"),
        ({"prompt_version": ""}, "prompt_version"),
        ({"prompt_version": ...}, "prompt_version"),
    ],
)
def test_an_untraceable_proposal_is_422(pipeline, customer, override, field):
    refused(pipeline.post("/api/v1/proposals", proposal_body(**override)), 422, field)


def test_an_unknown_follow_up_is_422_naming_it(pipeline, customer):
    sent = proposal_body(follow_ups=[{"kind": "email_customer"}, {"kind": "sms"}])
    refused(pipeline.post("/api/v1/proposals", sent), 422, "follow_ups[1].kind")


@pytest.mark.parametrize(
    ("follow_up", "field", "message"),
    [
        ({"kind": "email_customer", "params": {"template": "nope"}}, "follow_ups[0].params.template", "must be one of"),
        ({"kind": "webhook", "params": {"url": "file:///etc/passwd"}}, "follow_ups[0].params.url", "http or https"),
        ({"kind": "webhook", "params": {"url": "https://me:pw@hooks.example.com/"}}, "follow_ups[0].params.url", "URL"),
    ],
)
def test_a_follow_up_that_could_never_run_is_422_naming_its_part(pipeline, customer, follow_up, field, message):
    body = refused(pipeline.post("/api/v1/proposals", proposal_body(follow_ups=[follow_up])), 422, field)
    assert message in next(error["message"] for error in body["errors"] if error["field"] == field)


def test_a_webhook_to_a_host_the_workflow_does_not_list_is_403_naming_the_url(db, customer):
    pipeline = make_pipeline(make_workflow(webhook_hosts=["hooks.example.com"]))
    sent = proposal_body(
        follow_ups=[
            {"kind": "webhook", "params": {"url": "https://hooks.example.com/shipping"}},
            {"kind": "webhook", "params": {"url": "http://169.254.169.254/latest/meta-data"}},
        ]
    )
    body = refused(pipeline.post("/api/v1/proposals", sent), 403, "follow_ups[1].params.url")
    assert body["errors"] == [
        {
            "field": "follow_ups[1].params.url",
            "message": "workflow address-updates may not call 169.254.169.254 (its webhook hosts: hooks.example.com)",
        }
    ]


def test_a_webhook_to_a_listed_host_is_kept_with_the_proposal(db, customer):
    pipeline = make_pipeline(make_workflow(webhook_hosts=["hooks.example.com", "crm.internal:8443"]))
    follow_ups = [
        {"kind": "webhook", "params": {"url": "https://HOOKS.example.com/a", "payload": {"ticket": "T-881"}}},
        {"kind": "webhook", "params": {"url": "http://hooks.example.com:80/a"}},
        {"kind": "webhook", "params": {"url": "https://crm.internal:8443/b"}},
    ]
    response = pipeline.post("/api/v1/proposals", proposal_body(follow_ups=follow_ups))
    assert response.status_code == 201, response.content
    assert Proposal.objects.get().follow_ups == follow_ups
    other_port = proposal_body(follow_ups=[{"kind": "webhook", "params": {"url": "https://crm.internal:9443/b"}}])
    assert pipeline.post("/api/v1/proposals", other_port).status_code == 403


def test_a_listed_host_without_a_port_takes_only_443_and_80(db, customer):
    pipeline = make_pipeline(make_workflow(webhook_hosts=["hooks.example.com"]))
    sent = proposal_body(follow_ups=[{"kind": "webhook", "params": {"url": "https://hooks.example.com:9000/a"}}])
    body = refused(pipeline.post("/api/v1/proposals", sent), 403, "follow_ups[0].params.url")
    assert body["errors"][0]["message"] == (
        "workflow address-updates may not call hooks.example.com:9000 (its webhook hosts: hooks.example.com); "
        "a host listed without a port takes only ports 443 and 80"
    )


@pytest.mark.parametrize(
    ("declared", "follow_up", "field", "message"),
    [
        (
            {"email_customer": ["address-confirmed"]},
            {"kind": "email_customer", "params": {"template": "refund-update"}},
            "follow_ups[0].params.template",
            "workflow address-updates may not send the template 'refund-update' (it may: address-confirmed)",
        ),
        (
            {},
            {"kind": "email_customer", "params": {"template": "address-confirmed"}},
            "follow_ups[0].kind",
            "workflow address-updates may not ask for email_customer follow-ups: its file declares none",
        ),
        (
            {"email_customer": ["address-confirmed"]},
            {"kind": "webhook", "params": {"url": "https://hooks.example.com/a"}},
            "follow_ups[0].kind",
            "workflow address-updates may not call webhooks: its file lists no webhook hosts",
        ),
    ],
)
def test_a_follow_up_the_workflow_file_does_not_declare_is_403_naming_it(
    db, customer, declared, follow_up, field, message
):
    pipeline = make_pipeline(make_workflow(follow_up_templates=declared))
    body = refused(pipeline.post("/api/v1/proposals", proposal_body(follow_ups=[follow_up])), 403, field)
    assert body["errors"] == [{"field": field, "message": message}]


@pytest.mark.parametrize(
    "follow_up",
    [
        {"kind": "webhook", "params": {"url": "https://hooks.example.com/shipping", "payload": {"ticket": "T-881"}}},
        {"kind": "email_customer", "params": {"template": "address-confirmed"}},
    ],
)
def test_write_fields_with_a_follow_up_wait_for_a_person(
    db, customer, queued, django_capture_on_commit_callbacks, follow_up
):
    pipeline = make_pipeline(make_workflow(webhook_hosts=["hooks.example.com"]))
    with django_capture_on_commit_callbacks(execute=True):
        response = pipeline.post(
            "/api/v1/proposals", proposal_body(changes={"priority": "high"}, follow_ups=[follow_up])
        )
    assert (response.status_code, response.json()["status"]) == (201, "pending")
    assert Proposal.objects.get().status == ProposalStatus.PENDING
    assert not AuditEvent.objects.filter(action="proposal.approved").exists()
    assert queued == []


def test_a_batch_item_asking_for_an_undeclared_follow_up_is_refused_alone(db, customer):
    pipeline = make_pipeline(make_workflow())
    batch = pipeline.post("/api/v1/batches", {"name": "sweep", "run_id": "run-1", "expected_size": 2}).json()
    items = [
        proposal_body(),
        proposal_body(follow_ups=[{"kind": "email_customer", "params": {"template": "ticket-update"}}]),
    ]
    answer = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", {"proposals": items}).json()
    assert [result["status_code"] for result in answer["results"]] == [201, 403]
    assert answer["results"][1]["body"]["errors"][0]["field"] == "follow_ups[0].params.template"


def test_a_deleted_record_is_409(pipeline, customer):
    Customer.objects.filter(pk=customer.pk).update(deleted_at=timezone.now())
    refused(pipeline.post("/api/v1/proposals", proposal_body()), 409, "record_id")


@pytest.fixture
def merger(db):  # type: ignore[no-untyped-def]
    workflow = make_workflow(
        slug="duplicate-merge",
        policies={("customer", "full_name"): "read", ("customer", "account_status"): "suggest"},
        actions=["merge", "archive", "delete"],
    )
    return make_pipeline(workflow)


def merge_body(**overrides):  # type: ignore[no-untyped-def]
    fields = {"action": "merge", "changes": ..., "base": {"full_name": "Customer 0"}, "follow_ups": ...}
    return proposal_body(**{**fields, **overrides})


def test_a_merge_names_the_survivor(merger, customer):
    survivor = CustomerFactory(record_id="CUS-10001")
    response = merger.post("/api/v1/proposals", merge_body(merge_into=survivor.record_id))
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    assert Proposal.objects.get().merge_into == "CUS-10001"


def test_a_merge_into_itself_is_422(merger, customer):
    refused(merger.post("/api/v1/proposals", merge_body(merge_into="CUS-10432")), 422, "merge_into")


def test_a_merge_into_a_missing_record_is_404_naming_merge_into(merger, customer):
    refused(merger.post("/api/v1/proposals", merge_body(merge_into="CUS-77777")), 404, "merge_into")


def test_a_merge_into_another_type_is_422(merger, customer):
    order = OrderFactory()
    refused(merger.post("/api/v1/proposals", merge_body(merge_into=order.record_id)), 422, "merge_into")


def test_a_merge_without_a_survivor_is_422(merger, customer):
    refused(merger.post("/api/v1/proposals", merge_body()), 422, "merge_into")


def test_a_merge_with_changes_is_422(merger, customer):
    CustomerFactory(record_id="CUS-10001")
    sent = merge_body(merge_into="CUS-10001", changes={"account_status": "closed"})
    body = refused(merger.post("/api/v1/proposals", sent), 422, "changes")
    assert "merge_into instead of changes" in body["detail"]


def test_an_archive_is_accepted_without_changes(merger, customer):
    sent = proposal_body(action="archive", changes=..., base=..., follow_ups=...)
    response = merger.post("/api/v1/proposals", sent)
    assert response.status_code == 201
    assert Proposal.objects.get().action == "archive"


def test_an_archive_with_changes_is_422(merger, customer):
    sent = proposal_body(action="archive", changes={"account_status": "closed"}, base=..., follow_ups=...)
    refused(merger.post("/api/v1/proposals", sent), 422, "changes")


def test_read_a_proposal_with_its_decision_and_change(pipeline, customer):
    created = pipeline.post("/api/v1/proposals", proposal_body()).json()
    answer = pipeline.get(f"/api/v1/proposals/{created['id']}").json()
    assert answer == {
        "id": created["id"],
        "status": "pending",
        "record_type": "customer",
        "record_id": "CUS-10432",
        "action": "update",
        "changes": {"shipping_address": "12 Harbour Road, Leith"},
        "decision": None,
        "change_id": None,
    }
    lead = UserFactory(username="lead")
    decided_at = timezone.now() - timedelta(minutes=1)
    Proposal.objects.filter(pk=created["id"]).update(
        status="rejected", decided_by=lead, decided_at=decided_at, decision_note="wrong customer"
    )
    answer = pipeline.get(f"/api/v1/proposals/{created['id']}").json()
    assert answer["status"] == "rejected"
    assert answer["decision"]["by"] == "lead"
    assert answer["decision"]["note"] == "wrong customer"
    assert answer["decision"]["at"].startswith(decided_at.strftime("%Y-%m-%dT%H:%M"))


def test_an_approved_by_policy_proposal_names_the_policy_as_decider(pipeline, customer):
    created = pipeline.post("/api/v1/proposals", proposal_body(changes={"priority": "high"}, follow_ups=[])).json()
    decision = pipeline.get(f"/api/v1/proposals/{created['id']}").json()["decision"]
    assert decision["by"] == "policy (write access)"


def test_an_unknown_proposal_is_404(pipeline):
    response = pipeline.get("/api/v1/proposals/424242")
    assert response.status_code == 404
    assert response.json()["errors"] == [
        {"field": "proposal_id", "message": "no proposal 424242 for workflow address-updates"}
    ]
