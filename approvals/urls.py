from django.urls import include, path

from approvals.intake import views as intake
from approvals.overrides import views as overrides
from approvals.retention import views as retention
from approvals.review import views as review
from approvals.stops import views as stops
from approvals.trace import views as trace
from approvals.undo import views as undo
from approvals.workflows import views as workflows

urlpatterns = [
    path("", include("approvals.readiness.urls")),
    path("", include("approvals.notifying.urls")),
    path("", include("approvals.noticing.urls")),
    path("workflows/", workflows.workflow_list, name="workflow-list"),
    path("workflows/<slug:slug>/schedule/", workflows.workflow_schedule, name="workflow-schedule"),
    path("workflows/<slug:slug>/retention/", retention.workflow_retention, name="workflow-retention"),
    path(
        "workflows/<slug:slug>/service-accounts/<int:account_id>/revoke/",
        intake.service_account_revoke,
        name="service-account-revoke",
    ),
    path("blocked/", overrides.blocked, name="blocked"),
    path("blocked/override/", overrides.override_new, name="override-grant"),
    path("overrides/<int:pk>/revoke/", overrides.override_end, name="override-revoke"),
    path("overrides/review/", overrides.override_review, name="override-review"),
    path(
        "overrides/<int:pk>/acknowledge/",
        overrides.override_verdict,
        {"verdict": "acknowledge"},
        name="override-acknowledge",
    ),
    path("overrides/<int:pk>/flag/", overrides.override_verdict, {"verdict": "flag"}, name="override-flag"),
    path("stops/new/", stops.stop_new, name="stop-new"),
    path("stops/<int:pk>/release/", stops.stop_release, name="stop-release"),
    path("review/", review.review_queue, name="review-queue"),
    path("review/counts/", review.review_counts, name="review-counts"),
    path("review/<int:proposal_id>/", review.review_detail, name="review-detail"),
    path("review/<int:proposal_id>/claim/", review.review_claim, name="review-claim"),
    path("review/<int:proposal_id>/approve/", review.review_approve, name="review-approve"),
    path("review/<int:proposal_id>/reject/", review.review_reject, name="review-reject"),
    path("review/<int:proposal_id>/shadow-verdict/", review.review_shadow_verdict, name="review-shadow-verdict"),
    path("review/<int:proposal_id>/write-over/", review.review_force_apply, name="review-force-apply"),
    path("review/batches/<int:batch_id>/", review.review_batch, name="review-batch"),
    path("review/batches/<int:batch_id>/group/", review.review_group, name="review-group"),
    path("review/batches/<int:batch_id>/discard/", review.review_batch_discard, name="review-batch-discard"),
    path("trace/change/<uuid:change_id>/", trace.trace_change, name="trace-change"),
    path("trace/proposal/<int:proposal_id>/", trace.trace_proposal, name="trace-proposal"),
    path("changes/<uuid:change_id>/undo/", undo.change_undo, name="change-undo"),
    path("undo/", undo.undo_bulk, name="undo-bulk"),
    path("undo/jobs/<int:pk>/", undo.undo_job, name="undo-job"),
    path("undo/jobs/<int:pk>/cancel/", undo.undo_job_cancel_view, name="undo-job-cancel"),
]
