"""Workshop mode pages: host a session (host), join by code or QR and play on a phone (phone), the big screen with
its SSE stream (screen), and the report with its charts (report). Routes are thin: the rules and the
transactions live in app.game.events, the numbers in app.stats.events."""

from fastapi import APIRouter

from app.web.events import host, phone, report, screen

router = APIRouter()
for part in (host, phone, screen, report):
    router.include_router(part.router, include_in_schema=False)  # HTML pages stay out of the JSON API's schema

__all__ = ["router"]
