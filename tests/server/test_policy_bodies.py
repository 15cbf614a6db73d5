"""The rule endpoints' request bodies are typed: /openapi.json describes every field, and
bad input is refused with 422 naming the field, with nothing stored."""

from __future__ import annotations

from typing import Any

from patchline.policy.rules import FIELDS
from tests.server.conftest import RunningServer

RULE = {"id": "normal", "effect": "allow", "priority": 10}


def _schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = body["$ref"].rsplit("/", 1)[1]
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return schema


def test_openapi_describes_every_field_of_a_rule_and_an_amendment(server: RunningServer) -> None:
    spec = server.client().get("/openapi.json").json()
    rule = _schema(spec, "/api/policies")
    assert set(rule["properties"]) == set(FIELDS)
    assert set(rule["required"]) == {"id", "effect"}
    assert all(p.get("description") for p in rule["properties"].values())
    amendment = _schema(spec, "/api/policies/{policy_id}/amendments")
    assert set(amendment["properties"]) == {
        "effective_from",
        "changes",
        "note",
        "backdated",
        "reason",
    }
    assert set(amendment["required"]) == {"effective_from", "changes"}
    changes = spec["components"]["schemas"]["RuleChanges"]
    assert set(changes["properties"]) == set(FIELDS) - {"id"}
    assert changes["additionalProperties"] is False


BAD_RULES = [
    ({**RULE, "colour": "red"}, "colour"),
    ({**RULE, "priority": "high"}, "priority"),
    ({**RULE, "valid_until": 20180801}, "valid_until"),
    ({**RULE, "update_classes": ["cosmetic"]}, "update_classes"),
    ({"effect": "allow"}, "id"),
]
BAD_AMENDMENTS = [
    ({"effective_from": "2099-01-01", "changes": {"id": "other"}}, ["changes", "id"]),
    ({"effective_from": "2099-01-01", "changes": {"priority": "1"}}, ["changes", "priority"]),
    ({"effective_from": 4102444800, "changes": {"priority": 1}}, ["effective_from"]),
    ({"effective_from": "2099-01-01", "changes": {}, "why": "x"}, ["why"]),
    (
        {"effective_from": "2099-01-01", "changes": {"priority": 1}, "backdated": "yes"},
        ["backdated"],
    ),
]


def test_bad_bodies_are_refused_naming_the_field_and_nothing_is_stored(
    server: RunningServer,
) -> None:
    api = server.api()
    for body, field in BAD_RULES:
        refused = api.post("/api/policies", json=body)
        assert refused.status_code == 422, body
        assert field in [e["loc"][1] for e in refused.json()["detail"]], body
    assert api.get("/api/policies").json() == []
    assert api.post("/api/policies", json=RULE).status_code == 201
    for body, where in BAD_AMENDMENTS:
        refused = api.post("/api/policies/normal/amendments", json=body)
        assert refused.status_code == 422, body
        assert ["body", *where] in [e["loc"] for e in refused.json()["detail"]], body
    empty = api.post(
        "/api/policies/normal/amendments", json={"effective_from": "2099-01-01", "changes": {}}
    )
    assert empty.status_code == 422
    assert "changes must be a non-empty object" in empty.json()["detail"]
    assert api.get("/api/policies").json()[0]["amendments"] == []
