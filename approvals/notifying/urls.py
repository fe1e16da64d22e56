from django.urls import path

from approvals.notifying import views

urlpatterns = [
    path("account/notices/", views.notice_preferences, name="notice-preferences"),
]
