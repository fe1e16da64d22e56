"""The map, readiness, the five-step review and the trace drill."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
