from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "records"
    verbose_name = "Records"

    def ready(self) -> None:
        from audit import links
        from core import navigation

        navigation.register("Records", "record-search", order=20)
        links.register("record", "record-timeline")
