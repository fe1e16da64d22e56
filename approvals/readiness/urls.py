"""The map, readiness, prompt releases, the five-step review and the drills."""

from django.urls import path

from approvals.readiness.views import drills, prompts, readiness, review, trace_drill
from approvals.readiness.views import map as data_map

urlpatterns = [
    path("map/", data_map.map_page, name="map"),
    path("map.csv", data_map.map_csv, name="map-csv"),
    path("workflows/<slug:slug>/readiness/", readiness.workflow_readiness, name="workflow-readiness"),
    path("workflows/<slug:slug>/readiness/promote/", readiness.workflow_promote, name="workflow-promote"),
    path("workflows/<slug:slug>/prompts/promote/", prompts.prompt_promote, name="prompt-promote"),
    path("workflows/<slug:slug>/review/", review.workflow_review, name="workflow-review"),
    path("workflows/<slug:slug>/trace-drill/", trace_drill.workflow_trace_drill, name="trace-drill-start"),
    path("drills/trace/<int:pk>/", trace_drill.trace_drill, name="trace-drill"),
    path("drills/rollback/<int:pk>/", drills.rollback_drill_page, name="rollback-drill"),
]
