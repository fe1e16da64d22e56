import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("countersign")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["approvals"], related_name="tasks_overrides")
app.autodiscover_tasks(["approvals"], related_name="tasks_undo")
