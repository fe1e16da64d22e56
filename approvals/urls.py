from django.urls import path

from approvals import views, views_retention

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow-list"),
    path("workflows/<slug:slug>/retention/", views_retention.workflow_retention, name="workflow-retention"),
]
