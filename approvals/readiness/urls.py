"""The map, readiness, the five-step review and the trace drill."""

from django.urls import path

from approvals.readiness.views import map as data_map

urlpatterns: list = [
    path("map/", data_map.map_page, name="map"),
    path("map.csv", data_map.map_csv, name="map-csv"),
]
