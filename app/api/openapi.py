"""The OpenAPI blocks the routes would otherwise spell out by hand: their documented error answers and the
multipart upload forms FastAPI cannot describe from a route that reads the form itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.api.schemas import Problem


def problem_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answers with a Problem body, described in words."""
    return {status: {"model": Problem, "description": description} for status, description in descriptions.items()}


def multipart_form(properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``openapi_extra=`` for a route that reads a multipart form itself: the form's fields, ``file`` required."""
    schema = {"type": "object", "required": ["file"], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def truthful_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """What the error answers really look like, on every operation of ``spec`` (changed in place): a 422 is either a
    domain refusal (a Problem, its ``detail`` a sentence) or FastAPI's schema check (``detail`` a list of errors),
    and a request body that cannot be parsed at all is a 400 Problem."""
    problem = {"$ref": "#/components/schemas/Problem"}
    either = {"anyOf": [problem, {"$ref": "#/components/schemas/HTTPValidationError"}]}
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"]["content"] = {"application/json": {"schema": either}}
            if "requestBody" in operation:
                description = "The body could not be parsed (not JSON, or a broken form)"
                content = {"application/json": {"schema": problem}}
                responses.setdefault("400", {"description": description, "content": content})
    return spec


def with_truthful_errors(app: FastAPI) -> None:
    """``app``'s /api/openapi.json documents its error answers as ``truthful_errors`` says."""
    generate = app.openapi
    app.openapi = lambda: truthful_errors(generate())  # type: ignore[method-assign]
