"""How the web tier reads the remote model service's replies (the protocol is in app/modelsvc/server.py): one
request helper shared by every operation but generate() (which retries a stale keep-alive connection once and is
the hot path), so that a busy service, a down one, a refused job and a reply that does not decode map to the same
errors for explanations, text rounds, episodes and painters' answers alike. No torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import httpx

from app.errors import ServiceBusy, ServiceUnavailable
from app.messages import SERVICE_BUSY, SERVICE_DOWN
from app.ml.service.wire import WireError

# What a 422 (the service refused the job itself) becomes: a ValueError for callers that validate what players send
# (the painters' strokes), the service's own words as ServiceUnavailable for text and episodes, or the plain "not
# available" message (explanations, which players never shape).
InvalidAs = Literal["value_error", "detail", "down"]


async def request(
    http: httpx.AsyncClient | None,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    decode: Callable[[Any], Any],
    *,
    timeout: httpx.Timeout | float,
    failed: Callable[[str], None],
    url: str,
    invalid_as: InvalidAs = "detail",
) -> Any:
    """One operation's request. ``failed`` records a failure for health() (the client's state machine)."""
    if http is None:
        raise ServiceUnavailable(SERVICE_DOWN)
    try:
        response = await http.request(method, path, json=body, timeout=timeout)
    except httpx.PoolTimeout:
        raise ServiceBusy(SERVICE_BUSY) from None
    except httpx.TransportError as error:  # timeouts included
        failed(f"{path} at {url} failed: {error!r}")
        raise ServiceUnavailable(SERVICE_DOWN) from None
    if response.status_code == 200:
        try:
            return decode(response.json())
        except (WireError, ValueError) as error:
            failed(f"the model service at {url} answered {path} with a body that does not decode: {error}")
            raise ServiceUnavailable(SERVICE_DOWN) from None
    code, detail = error_detail(response)
    if response.status_code == 422 and invalid_as == "value_error":
        raise ValueError(detail)
    if response.status_code == 503 and code == "busy":
        busy = ServiceBusy(SERVICE_BUSY)
        busy.retry_after_s = retry_after(response, busy.retry_after_s)
        raise busy
    failed(f"the model service at {url} answered {path} with {response.status_code} {code}: {detail}")
    if invalid_as == "detail" and response.status_code in (422, 501) and detail:
        raise ServiceUnavailable(detail)
    raise ServiceUnavailable(SERVICE_DOWN)


def error_detail(response: httpx.Response) -> tuple[str, str]:
    """The service's {"error", "detail"} body, or the start of whatever else it sent."""
    try:
        body = response.json()
        return str(body.get("error", "error")), str(body.get("detail", ""))
    except (ValueError, AttributeError):
        return "error", response.text[:200]


def retry_after(response: httpx.Response, default: int) -> int:
    """The reply's Retry-After in whole seconds, kept within 1..60."""
    try:
        return max(1, min(60, int(response.headers.get("Retry-After", default))))
    except ValueError:
        return default
