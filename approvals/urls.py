from django.urls import path

from approvals import views

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow-list"),
    path("stops/new/", views.stop_new, name="stop-new"),
    path("stops/<int:pk>/release/", views.stop_release, name="stop-release"),
]
