"""The Ray Serve model service against the in-process one: N concurrent PGD jobs, images/s side by side.

Runs, in one process tree and interleaved trial by trial, (a) the in-process model service (InProcessModelService,
its own batcher) and (b) the same settings deployed on a local Ray Serve instance (app/modelsvc/ray_backend.py,
Serve's @serve.batch), reached over HTTP by the web server's client (RemoteModelService, protocol v1). Prints
images/s for each, the ratio, Serve's largest batch, and how long Ray took to start and deploy.

Ray must not send traffic off loopback, so the script re-runs itself inside a private network and PID namespace
(`unshare --net --pid --fork --mount-proc --kill-child`, needs root) unless --inside is given, and stops Ray with
serve.shutdown() and ray.shutdown().

Usage: python benchmarks/ray_serve.py [--concurrency 64] [--repeats 3] [--steps 20] [--max-batch 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


async def trial(service: object, jobs: list[object]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(service.generate(job) for job in jobs))  # type: ignore[attr-defined]
    return len(jobs) / (time.perf_counter() - started)


async def compare(settings: object, port: int, concurrency: int, repeats: int) -> dict[str, list[float]]:
    from app.game.plan import RoundPlan, new_job
    from app.modelsvc.client import RemoteModelService
    from app.modelsvc.factory import default_model_service

    local = default_model_service(settings)  # type: ignore[arg-type]
    remote = RemoteModelService(f"http://127.0.0.1:{port}", timeout_s=300.0)
    await local.start()
    await remote.start()
    try:
        info = local.opponent_info(settings.opponent)  # type: ignore[attr-defined]
        plan = RoundPlan(opponent=info.name, attack="pgd", steps=settings.attack_steps)  # type: ignore[attr-defined]
        rates: dict[str, list[float]] = {"in-process": [], "ray-serve-http": []}
        await trial(local, [new_job(plan, info, info.min_eps) for _ in range(4)])  # warm-up
        await trial(remote, [new_job(plan, info, info.min_eps) for _ in range(4)])
        for _ in range(repeats):
            for label, service in (("in-process", local), ("ray-serve-http", remote)):  # interleaved
                jobs = [new_job(plan, info, info.min_eps) for _ in range(concurrency)]
                rates[label].append(await trial(service, jobs))
        rates["largest_batch"] = [float((await remote.health()).get("remote", {}).get("largest_batch", 0))]
        return rates
    finally:
        await remote.stop()
        await local.stop()


def inside(args: argparse.Namespace) -> int:
    import ray
    from ray import serve

    from app.config import Settings
    from app.modelsvc.ray_backend import RayOptions, deploy

    settings = Settings(
        environment="test",
        device="cpu",
        opponents="fashion-cnn",
        attack_steps=args.steps,
        service_max_batch=args.max_batch,
        service_max_wait_ms=5.0,
        torch_threads=1,
        model_service_url="",
    )
    port = free_port()
    started = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
        _temp_dir=args.temp_dir,
    )
    ray_start = time.perf_counter() - started
    try:
        deploy(settings, RayOptions(replicas=1, cpus_per_replica=1), host="127.0.0.1", port=port)
        ready = time.perf_counter() - started
        rates = asyncio.run(compare(settings, port, args.concurrency, args.repeats))
    finally:
        serve.shutdown()
        ray.shutdown()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu_model()}, {os.cpu_count()} cores, no GPU used")
    print(f"Ray started in {ray_start:.1f} s, deployed and ready after {ready:.1f} s")
    print(f"{args.concurrency} concurrent PGD-{args.steps} jobs, max batch {args.max_batch}, {args.repeats} repeats")
    for label in ("in-process", "ray-serve-http"):
        values = ", ".join(f"{v:.1f}" for v in rates[label])
        print(f"  {label:>15}: median {statistics.median(rates[label]):6.1f} images/s  ({values})")
    ratio = statistics.median(rates["ray-serve-http"]) / statistics.median(rates["in-process"])
    largest = rates["largest_batch"][0]
    print(f"  ratio Ray Serve over HTTP / in-process: {ratio:.2f}x; Serve's largest batch {largest:.0f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--inside", action="store_true", help="already in a private namespace: run the comparison")
    parser.add_argument("--temp-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args)
    temp_dir = tempfile.mkdtemp(prefix="arena-ray-")
    argv = [sys.executable, str(Path(__file__).resolve()), "--inside", "--temp-dir", temp_dir]
    argv += ["--concurrency", str(args.concurrency), "--repeats", str(args.repeats)]
    argv += ["--steps", str(args.steps), "--max-batch", str(args.max_batch)]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    command = [*UNSHARE, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        return process.wait(timeout=args.timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        os.killpg(process.pid, 9)  # --kill-child takes the namespace, and every Ray process in it, down
        process.wait()
        print("stopped: timeout or interrupt")
        return 1
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
