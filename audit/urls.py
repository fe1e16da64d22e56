from django.urls import path

from audit import views

urlpatterns = [
    path("trail/", views.trail, name="trail"),
    path("trail/export.csv", views.trail_export_csv, name="trail-export-csv"),
    path("trail/export.json", views.trail_export_json, name="trail-export-json"),
]
