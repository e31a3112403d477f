"""The OpenAPI blocks the routes would otherwise spell out by hand: their documented error answers and the
multipart upload forms FastAPI cannot describe from a route that reads the form itself."""

from __future__ import annotations

from typing import Any

from app.api.schemas import Problem


def problem_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answers with a Problem body, described in words."""
    return {status: {"model": Problem, "description": description} for status, description in descriptions.items()}


def multipart_form(properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``openapi_extra=`` for a route that reads a multipart form itself: the form's fields, ``file`` required."""
    schema = {"type": "object", "required": ["file"], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
