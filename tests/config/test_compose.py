"""No Docker engine runs here, so the compose file is checked by reading it."""

from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
WORKERS = {f"worker-{queue}": queue for queue in settings.TASK_QUEUES}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_images():
    services = _compose()["services"]
    assert {"web", *WORKERS, "beat", "db", "redis"} <= set(services)
    assert services["db"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert "noeviction" in " ".join(services["redis"]["command"])
    for name in ("web", *WORKERS, "beat", "db", "redis"):
        assert "healthcheck" in services[name], name


def test_app_services_share_one_image_and_production_settings():
    services = _compose()["services"]
    for name in ("web", *WORKERS, "beat", "migrate"):
        service = services[name]
        assert service["build"] == "."
        environment = service["environment"]
        assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://redis:6379")
        assert "SECRET_KEY" in environment
    assert services["web"]["command"][0] == "gunicorn"
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]


def test_a_worker_serves_each_queue():
    """Every queue has a worker service that consumes it and only it, and no other service runs a worker."""
    services = _compose()["services"]
    for name, queue in WORKERS.items():
        command = services[name]["command"]
        assert command[:4] == ["celery", "-A", "config", "worker"]
        assert f"--queues={queue}" in command, name
    others = {name for name, service in services.items() if "worker" in service.get("command", [])}
    assert others == set(WORKERS)


def test_migrations_run_before_web_starts():
    services = _compose()["services"]
    assert services["migrate"]["command"][-1] == (
        "python manage.py migrate --noinput && python manage.py grant_app_role countersign_app"
    )
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert (ROOT / "Dockerfile").is_file()


def test_the_embedded_demo_serves_its_pages_with_debug_off():
    """`make run` shows the app's own error pages, not Django's debug page: its processes run with DEBUG off."""
    processes = {
        name: command.strip()
        for name, _, command in (
            line.partition(":") for line in (ROOT / "Procfile.embedded").read_text().splitlines() if line[:1].isalpha()
        )
    }
    assert set(processes) == {"web", *settings.TASK_QUEUES, "beat"}
    assert all(command.startswith("env DEBUG=false ") for command in processes.values())
    for queue in settings.TASK_QUEUES:
        assert f"celery -A config worker --queues={queue} " in processes[queue]


def test_migrations_run_as_the_owner_and_the_app_as_its_own_role():
    services = _compose()["services"]
    assert services["migrate"]["environment"]["DATABASE_URL"].startswith("postgres://countersign:")
    assert "APP_DATABASE_PASSWORD" in services["migrate"]["environment"]
    for name in ("web", *WORKERS, "beat"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://countersign_app:"), name
        assert "AUDIT_ANCHOR_KEY" in environment
