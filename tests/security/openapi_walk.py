"""Walk an OpenAPI document's JSON Schemas (following $ref)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def object_schemas(
    spec: dict[str, Any], schema: dict[str, Any], path: str, seen: set[str] | None = None
) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    """(JSON path, component name or None, schema) of every object schema with declared properties."""
    seen = set() if seen is None else seen
    name = schema["$ref"].rsplit("/", 1)[-1] if "$ref" in schema else None
    if name is not None:
        if name in seen:
            return
        seen = seen | {name}
    schema = resolve(spec, schema)
    if "properties" in schema:
        yield path, name, schema
        for prop, sub in schema["properties"].items():
            yield from object_schemas(spec, sub, f"{path}.{prop}", seen)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            yield from object_schemas(spec, sub, path, seen)
    if isinstance(schema.get("items"), dict):
        yield from object_schemas(spec, schema["items"], f"{path}[]", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from object_schemas(spec, schema["additionalProperties"], f"{path}{{}}", seen)


def json_request_body(operation: dict[str, Any]) -> dict[str, Any] | None:
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return body.get("schema") if body else None


def response_schemas(operation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for status, response in operation.get("responses", {}).items():
        for media, content in response.get("content", {}).items():
            if "schema" in content:
                yield f"{status} {media}", content["schema"]
