"""The JSON API's route table (`Endpoint`) and its OpenAPI 3.1 document, built from the tools' own models.

An endpoint's input is its tool's input model split three ways: `{field}` segments of the path, the
query string (GET) or a JSON body (POST). Its response is the tool's output model. The schemas are
pydantic's, under `#/components/schemas`, so the document cannot drift from what the handlers check.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from longtail_mcp.tools.spec import ToolSpec

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Endpoint:
    """One route below /api/v1: a method, a path whose `{field}` segments are fields of the tool's input,
    the tool it calls (by its server), the status of a success, and (for a create) the path of what it made,
    its `{field}` segments fields of the result, sent as `Location`."""

    method: str
    path: str
    server: str
    tool: ToolSpec
    summary: str
    status: int = 200
    location: str | None = None

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(s for s in self.path.split("/") if s)

    @property
    def params(self) -> list[str]:
        """The input fields given in the path."""
        return [s[1:-1] for s in self.segments if s.startswith("{")]


class ErrorDetail(BaseModel):
    code: str = Field(description="invalid_input, unauthenticated, forbidden, denied, not_found, conflict, "
                                  "method_not_allowed, unavailable or internal")
    message: str = Field(description="What went wrong, safe to show a person")
    data: Any = Field(None, description="Details, when there are any: `errors` lists each wrong field as "
                                        "{field, in, message} (a body, query or path field, or a form field)")
    rule: str | None = Field(None, description="The safety policy that refused the call (code denied)")


class ErrorResponse(BaseModel):
    """Every error: the HTTP status says its kind, `error.code` says it in words."""

    error: ErrorDetail


ERRORS = {
    "400": "Invalid input (not JSON, an unknown or wrong field, a resolution that fails its form): nothing changed",
    "401": "No API key, or an unknown, expired or revoked one",
    "403": "The key's account may not do this (its roles), or the key has read scope and this changes data",
    "404": "No such object, or one this account may not see (the two look the same)",
    "409": "The object changed first: the run ended, someone else holds the claim, the id is taken",
    "503": "The database cannot be reached right now",
}


def document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `endpoints` (served at /api/v1/openapi.json)."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorResponse, "serialization"): None}
    for e in endpoints:
        wanted[(e.tool.input, "validation")] = None
        wanted[(e.tool.output, "serialization")] = None
    refs, top = models_json_schema(list(wanted), ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))

    paths: dict[str, dict[str, Any]] = {"/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This document", "tags": ["meta"], "security": [],
        "responses": {"200": {"description": "The OpenAPI document",
                              "content": {"application/json": {"schema": {"type": "object"}}}}}}}}
    for e in endpoints:
        model = schemas[_name(refs[(e.tool.input, "validation")])]
        fields: dict[str, Any] = model.get("properties", {})
        required = set(model.get("required", []))
        rest = {k: v for k, v in fields.items() if k not in e.params}
        operation: dict[str, Any] = {
            "operationId": e.tool.name, "summary": e.summary, "description": e.tool.description,
            "tags": [e.segments[0]],
            "parameters": [_parameter(name, fields[name], "path", True) for name in e.params],
            "responses": _responses(e, refs[(e.tool.output, "serialization")]),
        }
        if e.method == "GET":
            operation["parameters"] += [_parameter(k, v, "query", k in required) for k, v in rest.items()]
        elif rest:
            body = f"{_pascal(e.tool.name)}Body"
            schemas[body] = {"type": "object", "title": body, "properties": rest, "additionalProperties": False,
                             **({"required": sorted(required & rest.keys())} if required & rest.keys() else {})}
            operation["requestBody"] = {"required": bool(required & rest.keys()), "content": {
                "application/json": {"schema": {"$ref": REF.format(model=body)}}}}
        if not operation["parameters"]:
            del operation["parameters"]
        paths.setdefault(e.path, {})[e.method.lower()] = operation

    error = refs[(ErrorResponse, "serialization")]
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "longtail-mcp JSON API", "version": _version(), "description": (
            "Runs and escalations for backends that are not MCP clients. The same API keys and roles as /mcp, "
            "and the same handlers as the MCP tools of the same names (operationId). A read-scope key may use "
            "GET only.")},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {code: {"description": text, "content": {"application/json": {"schema": error}}}
                          for code, text in ERRORS.items()},
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "An API key, `Authorization: Bearer ltk_...` (longtail-mcp keys create). "
                               "Not needed with `serve --dev` on a loopback address."}},
        },
    }
    _prune(doc)
    return doc


def _responses(e: Endpoint, output: dict[str, Any]) -> dict[str, Any]:
    ok = {"content": {"application/json": {"schema": output}}}
    out: dict[str, Any] = {str(e.status): {"description": "Done", **ok}}
    if e.status == 201:
        out["201"]["description"] = "Created (or, with an id used before by you, the first one, unchanged)"
        if "created" in e.tool.output.model_fields:  # it says whether it made one: the first one answers 200
            out["201"]["description"] = "Created"
            out["200"] = {"description": "The id was used before, by you: the first one, unchanged", **ok}
        if e.location:
            where = {"Location": {"description": f"Where it is: /api/v1{e.location}", "schema": {"type": "string"}}}
            for code in ("201", "200"):
                if code in out:
                    out[code]["headers"] = where
    errors = ["400", "401", "403", *(["404"] if e.params else []), *(["409"] if e.method != "GET" else []), "503"]
    out.update({code: {"$ref": f"#/components/responses/{code}"} for code in errors})
    return out


def _parameter(name: str, schema: dict[str, Any], where: str, required: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "required": required,
                           "schema": {k: v for k, v in schema.items() if k not in ("title", "description")}}
    if schema.get("description"):
        out["description"] = schema["description"]
    return out


def _name(ref: dict[str, Any]) -> str:
    return str(ref["$ref"]).rsplit("/", 1)[-1]


def _pascal(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in name.split("_"))


def _prune(doc: dict[str, Any]) -> None:
    """Drop the schemas nothing refers to (the tools' input models, once split into parameters and bodies)."""
    schemas = doc["components"]["schemas"]
    seen: set[str] = set()
    todo = [{k: v for k, v in doc.items() if k != "components"}, doc["components"]["responses"]]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/") and _name(node) not in seen:
                seen.add(_name(node))
                todo.append(schemas[_name(node)])
            todo += list(node.values())
        elif isinstance(node, list):
            todo += node
    for unused in set(schemas) - seen:
        del schemas[unused]


def _version() -> str:
    try:
        return version("longtail-mcp")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0"
