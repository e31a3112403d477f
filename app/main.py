"""create_app(): wires settings, database, templates, the model service and the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import messages
from app.api.cloak import UploadQueue
from app.api.cloak import router as api_cloak_router
from app.api.docs import router as api_docs_router
from app.api.events import router as api_events_router
from app.api.explain import router as api_explain_router
from app.api.fool_text import exports_router as api_human_texts_router
from app.api.fool_text import router as api_fool_text_router
from app.api.limits import DownloadSlots, Limits, RateLimited, RateLimiter, rate_limit
from app.api.openapi import with_truthful_errors
from app.api.paint import router as api_paint_router
from app.api.policy import router as api_policy_router
from app.api.routes import router as api_router
from app.api.stats import router as api_stats_router
from app.api.text import router as api_text_router
from app.api.validation import validation_reply
from app.config import Settings, get_settings
from app.db.notify import NotifyChannel
from app.db.session import open_database
from app.errors import ArenaError, DatabaseBusy
from app.game.events.prepare import background_preparation
from app.game.pool import ReadyRoundPool, with_ready_round_pool
from app.live import EventHub
from app.ml.cloak.service import CloakService
from app.ml.service.contracts import ModelService
from app.modelsvc.factory import default_model_service
from app.web.cloak import router as web_cloak_router
from app.web.events import router as web_events_router
from app.web.explain import router as web_explain_router
from app.web.fool_text import router as web_fool_text_router
from app.web.health import router as health_router
from app.web.lab import router as web_lab_router
from app.web.limits import rate_limited_reply
from app.web.natural import router as web_natural_router
from app.web.paint import router as web_paint_router
from app.web.policy import router as web_policy_router
from app.web.routes import render
from app.web.routes import router as web_router
from app.web.security_headers import SecurityHeaders
from app.web.session_cookie import session_cookies
from app.web.stats import router as web_stats_router
from app.web.templating import STATIC_DIR, build_templates
from app.web.text import router as web_text_router

logger = logging.getLogger(__name__)


def default_cloak_service(settings: Settings) -> CloakService:
    return CloakService(
        result_dir=settings.cloak_dir,
        result_ttl_s=settings.cloak_result_ttl_s,
        max_side=settings.cloak_max_side,
        steps=settings.cloak_steps,
        eot_steps=settings.cloak_steps,
        with_transfer=settings.cloak_transfer,
        natural_dir=settings.natural_dir,
        device=settings.device,
    )


def create_app(
    settings: Settings | None = None,
    *,
    model_service: ModelService | None = None,
    cloak_service: CloakService | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    cloak = cloak_service or default_cloak_service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = (
            {}
            if settings.is_sqlite
            else {
                "pool_size": settings.db_pool_size,
                "max_overflow": settings.db_pool_overflow,
                "pool_timeout": settings.db_pool_timeout_s,
            }
        )
        app.state.database = open_database(settings.database_url, **pool)
        service = model_service or with_ready_round_pool(default_model_service(settings), settings)
        await service.start()
        app.state.model_service = service
        await cloak.start()
        await app.state.hub.start()
        until_idle = service.until_idle if isinstance(service, ReadyRoundPool) else None
        try:
            async with background_preparation(
                app.state.database, service, until_idle=until_idle, interval_s=settings.stock_interval_s
            ):
                yield
        finally:
            await app.state.hub.stop()
            await cloak.stop()
            await service.stop()
            await app.state.database.dispose()
            logger.info("stopped: cloak results deleted, model service and database closed")

    app = FastAPI(
        title="Adversarial Arena",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # app/api/docs.py serves Swagger UI from static/vendor
        openapi_url="/api/openapi.json",
        redoc_url=None,
        dependencies=[Depends(rate_limit)],  # counts only the routes app/api/limits.py lists
    )
    app.state.settings = settings
    app.state.templates = build_templates()
    app.state.upload_queue = UploadQueue(settings.cloak_queue_size)  # classifications, natural rounds waiting
    app.state.cloak = cloak  # /cloak: photos cloaked in memory, results deleted after a TTL (app/ml/cloak/service.py)
    app.state.rate_limiter = RateLimiter(Limits.from_settings(settings))
    app.state.downloads = DownloadSlots(settings.export_downloads)  # answer exports streaming at once
    # Live updates for event screens and phones (app/live.py); on PostgreSQL shared with the other web processes.
    relay = None if settings.is_sqlite else NotifyChannel(settings.live_database_url or settings.database_url)
    app.state.hub = EventHub(relay)
    app.add_middleware(session_cookies, settings=settings)  # off loopback never the built-in key (session_cookie.py)
    app.add_middleware(SecurityHeaders)  # outside the session cookies: on every response, errors included

    @app.exception_handler(ArenaError)
    async def arena_error(request: Request, error: ArenaError) -> Response:
        headers = {}
        retry_after = getattr(error, "retry_after_s", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "text/html"):
            return JSONResponse({"detail": error.message}, status_code=error.status_code, headers=headers)
        hx = request.headers.get("HX-Request") == "true"
        context = {"player": None, "message": error.message, "status": error.status_code, "retry_after": retry_after}
        response = render(
            request, "pages/error.html", context, block="stage" if hx else None, status_code=error.status_code
        )
        response.headers.update(headers)
        return response

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, error: RateLimited) -> Response:
        return rate_limited_reply(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        return validation_reply(error)

    @app.exception_handler(PoolTimeout)
    async def database_busy(request: Request, error: PoolTimeout) -> Response:
        # Every connection is in use (a crowd on saturated cores): nothing was written for this request, so it is
        # safe to ask the client to retry, as when the model service is busy, rather than fail with a 500.
        logger.warning("database pool exhausted: %s", error)
        return await arena_error(request, DatabaseBusy(messages.DATABASE_BUSY))

    @app.exception_handler(OperationalError)
    async def database_refused(request: Request, error: OperationalError) -> Response:
        # No statement means the database refused the connection itself (PostgreSQL at max_connections, restarting,
        # unreachable): nothing was written, so the client may retry, as for a full pool. A failure during a
        # statement may have written something and stays a 500.
        if error.statement is not None:
            raise error
        logger.warning("database refused a connection: %s", error.orig)
        return await arena_error(request, DatabaseBusy(messages.DATABASE_BUSY))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health_router)
    app.include_router(api_docs_router)
    app.include_router(api_router)
    app.include_router(api_events_router)
    app.include_router(api_stats_router)
    app.include_router(web_router)
    app.include_router(web_events_router)
    app.include_router(web_stats_router)
    app.include_router(api_cloak_router)
    app.include_router(web_cloak_router)
    app.include_router(web_natural_router)
    app.include_router(web_lab_router)
    app.include_router(api_explain_router)
    app.include_router(api_text_router)  # text rounds (issue #18)
    app.include_router(web_explain_router)
    app.include_router(web_text_router)  # text rounds (issue #18)
    app.include_router(api_policy_router)  # the policy lab and pick the moments (issue 19)
    app.include_router(web_policy_router)
    app.include_router(api_paint_router)
    app.include_router(web_paint_router)
    app.include_router(web_fool_text_router)
    app.include_router(api_fool_text_router)
    app.include_router(api_human_texts_router)
    with_truthful_errors(app)
    return app
