"""`arena modelsvc`: the model service as its own process, in-process torch or a Ray Serve deployment."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from app.cli.common import check_opponent_ready, fail, failing_cleanly


def modelsvc(
    host: Annotated[str, typer.Option(help="Bind address; keep it on loopback or a private network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; the web server reaches it through ARENA_MODEL_SERVICE_URL.")] = 8100,
    backend: Annotated[
        Literal["inprocess", "ray"],
        typer.Option(help="What serves the jobs: inprocess (torch here) or ray (a Ray Serve deployment)."),
    ] = "inprocess",
    replicas: Annotated[int, typer.Option(help="ray: replicas (the minimum, with --max-replicas).")] = 1,
    max_replicas: Annotated[int, typer.Option(help="ray: autoscale up to this many replicas; 0: fixed.")] = 0,
    gpus_per_replica: Annotated[
        float | None, typer.Option(help="ray: GPUs per replica (default 1 where the cluster has GPUs, else 0).")
    ] = None,
    cpus_per_replica: Annotated[float, typer.Option(help="ray: CPUs per replica (and its torch threads).")] = 1.0,
) -> None:
    """Run the model service on its own (protocol: app/modelsvc/server.py); start the web server with
    ARENA_MODEL_SERVICE_URL=http://HOST:PORT to use it. With --backend ray: on the Ray cluster at RAY_ADDRESS, or on
    a private local Ray instance (docs/scaling.md)."""
    from app.modelsvc import server  # loads numpy and the service protocol; `arena --help` need not

    if backend == "ray":
        serve_on_ray(host, port, replicas, max_replicas, gpus_per_replica, cpus_per_replica)
        return
    check_opponent_ready()
    server.serve(host, port, backend)


def serve_on_ray(host: str, port: int, replicas: int, max_replicas: int, gpus: float | None, cpus: float) -> None:
    try:
        from app.modelsvc import ray_backend  # Ray Serve is an optional extra: import it only when asked for
    except ImportError as error:
        fail(f"--backend ray needs Ray Serve ({error}); install it with: pip install -e '.[ray]'")
    with failing_cleanly(ValueError):
        options = ray_backend.RayOptions(
            replicas=replicas, max_replicas=max_replicas, gpus_per_replica=gpus, cpus_per_replica=cpus
        )
    check_opponent_ready()
    ray_backend.serve_forever(host, port, options)
