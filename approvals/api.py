"""The pipeline API, v1. Handlers only translate: parse, call one service or selector, serialize."""

from ninja import NinjaAPI, Schema

api = NinjaAPI(
    title="Countersign pipeline API",
    version="1",
    description="Propose changes to customer records; a person countersigns what changes the source of truth.",
    urls_namespace="api-v1",
)


class HealthOut(Schema):
    status: str


@api.get("/health", response=HealthOut, auth=None, tags=["health"], summary="Liveness")
def health(request):  # type: ignore[no-untyped-def]
    return {"status": "ok"}
