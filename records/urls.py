from django.urls import path

from records import views

urlpatterns = [
    path("records/", views.record_search, name="record-search"),
    path("records/<slug:record_type>/<str:record_id>/", views.record_timeline_page, name="record-timeline"),
]
