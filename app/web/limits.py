"""The friendly page for a request over a rate limit (app/api/limits.py): it says how long to wait and then tries
again by itself, without JavaScript (a meta refresh) and, inside a page, as the same htmx request."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from app.api.limits import RateLimited
from app.web.routes import render


def retry_url(request: Request) -> str:
    """Where the page goes once the wait is over: the page itself for a GET; for a form post, the page the form
    was on (same site only), since reloading a POST would ask to send the form again."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path.startswith("/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/"


def rate_limited_reply(request: Request, error: RateLimited) -> Response:
    headers = {"Retry-After": str(error.retry_after_s)}
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "text/html"):
        return JSONResponse({"detail": error.message}, status_code=429, headers=headers)
    hx = request.headers.get("HX-Request") == "true"
    context = {
        "message": error.message,
        "retry_after": error.retry_after_s,
        "retry_url": retry_url(request),
        "retry_method": request.method.lower(),
        "retry_path": request.url.path,
    }
    response = render(request, "pages/rate_limited.html", context, block="stage" if hx else None, status_code=429)
    response.headers.update(headers)
    return response
