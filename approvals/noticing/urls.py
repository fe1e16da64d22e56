"""The pages about noticing how workflows do."""

from django.urls import path

from approvals.noticing.views import quality

urlpatterns = [
    path("workflows/<slug:slug>/quality/", quality.workflow_quality_page, name="workflow-quality"),
]
