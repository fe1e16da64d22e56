from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals.notifying import alarms
        from approvals.readiness.promotion import stage_gate
        from approvals.workflows import stage_gate as stage_gates
        from approvals.workflows.landing import landing_page
        from approvals.workflows.rights import viewer_scope
        from audit import links
        from core import navigation, visibility

        navigation.register("Workflows", "workflow-list", order=30)
        navigation.register("Map", "map", order=35)
        navigation.register("Blocked", "blocked", order=50)
        navigation.register("Review", "review-queue", order=10)
        links.register("change", "trace-change")
        links.register("proposal", "trace-proposal")
        visibility.register(viewer_scope)
        stage_gates.register(stage_gate)
        navigation.register_landing(lambda user: landing_page(user=user))
        alarms.connect()
