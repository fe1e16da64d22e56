from django.urls import path

from approvals import views

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow-list"),
    path("workflows/<slug:slug>/retention/", views.workflow_retention, name="workflow-retention"),
]
