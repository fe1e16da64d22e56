"""The map, readiness, the five-step review and the trace drill."""

from django.urls import path

from approvals.readiness.views import review

urlpatterns = [
    path("workflows/<slug:slug>/review/", review.workflow_review, name="workflow-review"),
]
