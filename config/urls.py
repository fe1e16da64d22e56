from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from approvals.api import api
from approvals.noticing.views import metrics as noticing_metrics
from core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("metrics", noticing_metrics.metrics, name="metrics"),
    path("", include("audit.urls")),
    path("", include("records.urls")),
    path("", include("approvals.urls")),
]

# 404 and 403 are Django's own views drawing templates/404.html and 403.html in the app frame.
handler500 = "core.views.server_error"
