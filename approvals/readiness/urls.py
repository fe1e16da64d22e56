"""The map, readiness, the five-step review and the trace drill."""

from django.urls import path

from approvals.readiness.views import drills, prompts

urlpatterns = [
    path("workflows/<slug:slug>/prompts/promote/", prompts.prompt_promote, name="prompt-promote"),
    path("drills/rollback/<int:pk>/", drills.rollback_drill_page, name="rollback-drill"),
]
