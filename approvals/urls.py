from django.urls import path

from approvals import views

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow-list"),
]
