from django.urls import path

from approvals import views

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow-list"),
    path("trace/change/<uuid:change_id>/", views.trace_change, name="trace-change"),
    path("trace/proposal/<int:proposal_id>/", views.trace_proposal, name="trace-proposal"),
]
