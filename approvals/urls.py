from django.urls import path

from approvals import views, views_overrides, views_retention, views_review, views_undo

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow-list"),
    path("blocked/", views_overrides.blocked, name="blocked"),
    path("blocked/override/", views_overrides.override_new, name="override-grant"),
    path("overrides/<int:pk>/revoke/", views_overrides.override_end, name="override-revoke"),
    path("overrides/review/", views_overrides.override_review, name="override-review"),
    path(
        "overrides/<int:pk>/acknowledge/",
        views_overrides.override_verdict,
        {"verdict": "acknowledge"},
        name="override-acknowledge",
    ),
    path("overrides/<int:pk>/flag/", views_overrides.override_verdict, {"verdict": "flag"}, name="override-flag"),
    path("workflows/<slug:slug>/schedule/", views_overrides.workflow_schedule, name="workflow-schedule"),
    path("stops/new/", views.stop_new, name="stop-new"),
    path("stops/<int:pk>/release/", views.stop_release, name="stop-release"),
    path("review/", views_review.review_queue, name="review-queue"),
    path("review/counts/", views_review.review_counts, name="review-counts"),
    path("review/<int:proposal_id>/", views_review.review_detail, name="review-detail"),
    path("review/<int:proposal_id>/claim/", views_review.review_claim, name="review-claim"),
    path("review/<int:proposal_id>/approve/", views_review.review_approve, name="review-approve"),
    path("review/<int:proposal_id>/reject/", views_review.review_reject, name="review-reject"),
    path("review/<int:proposal_id>/write-over/", views_review.review_force_apply, name="review-force-apply"),
    path("review/batches/<int:batch_id>/", views_review.review_batch, name="review-batch"),
    path("review/batches/<int:batch_id>/group/", views_review.review_group, name="review-group"),
    path("trace/change/<uuid:change_id>/", views.trace_change, name="trace-change"),
    path("trace/proposal/<int:proposal_id>/", views.trace_proposal, name="trace-proposal"),
    path("workflows/<slug:slug>/retention/", views_retention.workflow_retention, name="workflow-retention"),
]

urlpatterns += [
    path("changes/<uuid:change_id>/undo/", views_undo.change_undo, name="change-undo"),
    path("undo/", views_undo.undo_bulk, name="undo-bulk"),
    path("undo/jobs/<int:pk>/", views_undo.undo_job, name="undo-job"),
    path("undo/jobs/<int:pk>/cancel/", views_undo.undo_job_cancel_view, name="undo-job-cancel"),
]
