"""The model service a process runs, chosen from the settings: the web server (app/main.py), `arena modelsvc`
(app/modelsvc/server.py) and each Ray Serve replica (app/modelsvc/ray_backend.py) all build theirs here."""

from __future__ import annotations

from app.config import Settings
from app.ml.service.contracts import ModelService


def default_model_service(settings: Settings) -> ModelService:
    if settings.model_service_url:  # a separate `arena modelsvc` process (app/modelsvc): no torch in this one
        from app.modelsvc.client import RemoteModelService  # httpx adds ~0.1 s to a start that does not need it

        return RemoteModelService(
            settings.model_service_url,
            timeout_s=settings.service_timeout_s,
            max_connections=settings.service_queue_size,
        )
    # torch is imported here and nowhere else in the server: the web tier starts without it
    from app.ml.opponents.specs import available_opponents
    from app.ml.service.in_process import InProcessModelService

    return InProcessModelService(
        opponents=settings.opponent_choice(available_opponents()),
        device=settings.device,
        max_batch=settings.service_max_batch,
        max_wait_ms=settings.service_max_wait_ms,
        queue_size=settings.service_queue_size,
        timeout_s=settings.service_timeout_s,
        torch_threads=settings.torch_threads,
        global_units=settings.service_global_units,
        per_client_units=settings.service_player_units,
        models_dir=settings.models_dir,
        data_dir=settings.data_dir,
        text_opponents=[name.strip() for name in settings.text_opponents.split(",") if name.strip()],
    )
