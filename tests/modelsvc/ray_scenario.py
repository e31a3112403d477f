"""The body of tests/modelsvc/test_ray_backend.py, run as its own process inside a private network namespace.

Starts a local Ray instance bound to loopback, deploys the model service (app/modelsvc/ray_backend.py) with the real
fashion-cnn opponent, sends the same batch of PGD jobs once through the deployment handle and once over HTTP
through RemoteModelService (protocol v1, the web server's client), shuts Serve and Ray down, and prints one JSON
object with what it saw on the last line of stdout. The test process makes the assertions.

Usage (what the test runs, as root):
    unshare --net --pid --fork --mount-proc --kill-child \\
        sh -c 'ip link set lo up && exec python tests/modelsvc/ray_scenario.py --temp-dir /tmp/arena-ray-XXXX'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from typing import Any

import numpy as np


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tcp_peers() -> list[str]:
    """Remote addresses of every TCP socket in this network namespace (from /proc/net/tcp and tcp6)."""
    peers = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as table:
            for line in table.readlines()[1:]:
                remote = line.split()[2].split(":")[0]
                if len(remote) == 8:
                    peers.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(remote)[::-1]))
                else:
                    words = [bytes.fromhex(remote[i : i + 8])[::-1] for i in range(0, 32, 8)]
                    peers.add(socket.inet_ntop(socket.AF_INET6, b"".join(words)))
    return sorted(peers)


def summarise(results: list[Any], jobs: list[Any], labels: np.ndarray, classes: int) -> dict[str, Any]:
    pairs = list(zip(results, jobs, strict=True))
    return {
        "count": len(results),
        "true_labels_match": all(
            r.true_label == int(labels[j.image_index]) for r, j in zip(results, jobs, strict=True)
        ),
        "labels_in_range": all(0 <= r.adversarial_label < classes and 0 <= r.clean_label < classes for r in results),
        "clean_correct": all(r.clean_label == r.true_label for r in results),
        "within_eps": all(r.linf <= j.eps + 1e-9 for r, j in pairs),
        "uint8_28x28": all(r.adversarial.dtype == np.uint8 and r.adversarial.shape == (28, 28) for r in results),
        "probs_sum_to_1": all(abs(sum(r.adversarial_probs) - 1.0) < 1e-3 for r in results),
        "echo_seed": all(
            r.seed == j.seed and r.image_index == j.image_index for r, j in zip(results, jobs, strict=True)
        ),
        "fooled": sum(r.fooled for r in results),
    }


async def exercise(port: int, n_jobs: int, steps: int) -> dict[str, Any]:
    from ray import serve

    from app.game.plan import RoundPlan
    from app.ml.service.contracts import ImageJob
    from app.modelsvc.client import RemoteModelService
    from app.modelsvc.ray_backend import APP_NAME, DEPLOYMENT_NAME

    report: dict[str, Any] = {}
    client = RemoteModelService(f"http://127.0.0.1:{port}", timeout_s=60.0)
    await client.start()
    try:
        info = client.opponent_info("fashion-cnn")
        params = ImageJob.freeze_params(RoundPlan(opponent="fashion-cnn", attack="pgd", steps=steps).attack_params())
        jobs = [
            ImageJob(
                opponent="fashion-cnn",
                attack="pgd",
                params=params,
                image_index=info.eligible_indices[i * 37 % len(info.eligible_indices)],
                eps=(2 + i % 10) / 255.0,
                seed=1000 + i,
            )
            for i in range(n_jobs)
        ]
        from app.ml.packs import get_pack

        _, labels = get_pack(info.pack).load_split("test")
        handle = serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=APP_NAME)

        started = time.perf_counter()
        by_handle = await asyncio.gather(*(handle.generate.remote(job) for job in jobs))
        report["handle_s"] = time.perf_counter() - started
        started = time.perf_counter()
        by_http = await asyncio.gather(*(client.generate(job) for job in jobs))
        report["http_s"] = time.perf_counter() - started

        report["handle"] = summarise(by_handle, jobs, labels, len(info.class_names))
        report["http"] = summarise(by_http, jobs, labels, len(info.class_names))
        report["same_images"] = all(
            np.array_equal(a.adversarial, b.adversarial) and a.adversarial_label == b.adversarial_label
            for a, b in zip(by_handle, by_http, strict=True)
        )
        report["health"] = await client.health()
        report["attacks"] = len(client.attack_catalog())
        report["opponents"] = client.opponent_names()
    finally:
        await client.stop()
    return report


def main() -> int:
    import ray
    from ray import serve

    from app.config import Settings
    from app.modelsvc.ray_backend import RayOptions, deploy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="PGD steps per job")
    parser.add_argument("--temp-dir", required=True, help="Ray's session folder (short path: it holds sockets)")
    args = parser.parse_args()
    n_jobs, steps = args.jobs, args.steps
    max_batch = 16
    settings = Settings(
        environment="test",
        device="cpu",
        opponents="fashion-cnn",
        service_max_batch=max_batch,
        service_max_wait_ms=20.0,
        torch_threads=1,
        model_service_url="",
    )
    port = free_port()
    report: dict[str, Any] = {"max_batch": max_batch, "jobs": n_jobs, "timings": {}}
    started = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
        _temp_dir=args.temp_dir,
    )
    report["timings"]["ray_start_s"] = time.perf_counter() - started
    try:
        deploy(settings, RayOptions(replicas=1, cpus_per_replica=1), host="127.0.0.1", port=port)
        report["timings"]["deploy_s"] = time.perf_counter() - started
        report.update(asyncio.run(exercise(port, n_jobs, steps)))
        report["tcp_peers"] = tcp_peers()
    finally:
        serve.shutdown()
        ray.shutdown()
    report["timings"]["total_s"] = time.perf_counter() - started
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
