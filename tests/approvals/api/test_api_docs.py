import re

from django.test import Client

CONTRACT_PATHS = {
    "/api/v1/health": {"get"},
    "/api/v1/records/{record_type}/{record_id}": {"get"},
    "/api/v1/proposals": {"post"},
    "/api/v1/proposals/{proposal_id}": {"get"},
    "/api/v1/batches": {"post"},
    "/api/v1/batches/{batch_id}": {"get"},
    "/api/v1/batches/{batch_id}/proposals": {"post"},
    "/api/v1/batches/{batch_id}/stop": {"post"},
    "/api/v1/batches/{batch_id}/discard": {"post"},
    "/api/v1/proposals/{proposal_id}/artifacts": {"post"},
}


def test_the_openapi_document_holds_the_contract(db):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    for path, methods in CONTRACT_PATHS.items():
        assert methods <= set(document["paths"][path]), path
    proposal = document["components"]["schemas"]["ProposalIn"]
    assert proposal["additionalProperties"] is False
    assert set(proposal["required"]) == {
        "record_type",
        "record_id",
        "action",
        "reason",
        "confidence",
        "model",
        "prompt_version",
    }
    submit = document["paths"]["/api/v1/proposals"]["post"]
    assert {"201", "401", "403", "404", "409", "413", "422", "423"} <= set(submit["responses"])
    assert "application/problem+json" in submit["responses"]["422"]["content"]
    assert submit["parameters"][0]["name"] == "Idempotency-Key"
    assert document["components"]["securitySchemes"]["ServiceAccountBearer"]["scheme"] == "bearer"


def test_the_docs_page_loads_only_local_assets(db):
    client = Client()
    html = client.get("/api/v1/docs").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        response = client.get(asset)
        response.close()
        assert response.status_code == 200, asset
    assert "cdn" not in html.lower()
