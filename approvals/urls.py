from django.urls import path

from approvals import views, views_review

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow-list"),
    path("review/", views_review.review_queue, name="review-queue"),
    path("review/counts/", views_review.review_counts, name="review-counts"),
    path("review/<int:proposal_id>/", views_review.review_detail, name="review-detail"),
    path("review/<int:proposal_id>/claim/", views_review.review_claim, name="review-claim"),
    path("review/<int:proposal_id>/approve/", views_review.review_approve, name="review-approve"),
    path("review/<int:proposal_id>/reject/", views_review.review_reject, name="review-reject"),
    path("review/batches/<int:batch_id>/", views_review.review_batch, name="review-batch"),
    path("review/batches/<int:batch_id>/group/", views_review.review_group, name="review-group"),
]
