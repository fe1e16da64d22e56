"""Bearer tokens: each resolves to one service account, and through it to one workflow."""

from django.http import HttpRequest
from ninja.security import HttpBearer

from approvals.intake.accounts import service_account_authenticate
from approvals.models import ServiceAccount
from core.text import text_problem


class ServiceAccountBearer(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ServiceAccount | None:
        # No token holds such text; one that does could not even be hashed to look it up.
        if text_problem(token):
            return None
        return service_account_authenticate(token=token.strip())


class PipelineRequest(HttpRequest):
    auth: ServiceAccount
