"""The map, readiness, the five-step review and the trace drill."""

from django.urls import path

from approvals.readiness.views import readiness

urlpatterns = [
    path("workflows/<slug:slug>/readiness/", readiness.workflow_readiness, name="workflow-readiness"),
    path("workflows/<slug:slug>/readiness/promote/", readiness.workflow_promote, name="workflow-promote"),
]
