"""``/docs`` works with no network: every asset it loads is served by the server itself;
the OpenAPI document declares the bearer-token scheme the Authorize button uses."""

from __future__ import annotations

import re

from tests.server.conftest import RunningServer


def test_docs_page_loads_only_assets_served_by_the_server(server: RunningServer) -> None:
    client = server.client()
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert any(a.endswith(".js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 0
    assert client.get("/openapi.json").json()["openapi"]


def test_openapi_declares_a_bearer_token_scheme_on_the_api(server: RunningServer) -> None:
    spec = server.client().get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["bearer"].items()
    for path, operations in spec["paths"].items():
        if path.startswith("/api/"):
            for operation in operations.values():
                assert {"bearer": []} in operation.get("security", []), path


def test_openapi_describes_the_response_of_every_api_operation(server: RunningServer) -> None:
    spec = server.client().get("/openapi.json").json()
    components = spec["components"]["schemas"]
    assert {"type": "http", "scheme": "bearer"}.items() <= spec["components"]["securitySchemes"][
        "bearer"
    ].items()
    undescribed = []
    count = 0
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            count += 1
            assert {"bearer": []} in operation.get("security", []), (method, path)
            success = [code for code in operation["responses"] if code in ("200", "201")]
            schemas = [
                operation["responses"][code].get("content", {}).get("application/json", {})
                for code in success
            ]
            if not success or not all(_described(s.get("schema", {}), components) for s in schemas):
                undescribed.append(f"{method.upper()} {path}")
    assert count >= 15
    assert not undescribed, undescribed


def _described(schema: dict[str, object], components: dict[str, dict[str, object]]) -> bool:
    """A named model with its fields, or a list of one."""
    if schema.get("type") == "array":
        items = schema.get("items")
        return isinstance(items, dict) and _described(items, components)
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return False
    return bool(components[ref.rsplit("/", 1)[-1]].get("properties"))
