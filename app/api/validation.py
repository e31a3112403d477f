"""The 422 reply to a request that does not match the API's schema: FastAPI's own shape (``HTTPValidationError``),
always writable as JSON."""

from __future__ import annotations

import math
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float spelled as a string: JSON has no Infinity or NaN, and the errors echo
    the input (``{"eps": 1e400}`` arrives as infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_json(item) for item in value]
    return value


def validation_reply(error: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": finite_json(jsonable_encoder(error.errors()))}, status_code=422)
