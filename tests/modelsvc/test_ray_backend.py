"""The Ray Serve backend of the model service (app/modelsvc/ray_backend.py) on a local Ray instance.

Ray must never send traffic off loopback: it binds to the machine's external address and probes cloud metadata
(169.254.169.254) and a public resolver on start, even with usage stats off. So the scenario (tests/modelsvc/
ray_scenario.py) runs in its own process inside a private network namespace that has nothing but a loopback
interface (`unshare -n`, which needs root or CAP_SYS_ADMIN), with RAY_USAGE_STATS_ENABLED=0, and stops Ray with
serve.shutdown() and ray.shutdown() (never `ray stop`, which would kill every Ray process on the machine). The
namespace has its own PIDs too (`-p --kill-child`): if the scenario hangs past the timeout, killing it ends every
Ray process it started and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the optional extra `ray` is not installed: pip install -e '.[ray]'")

from app.config import Settings  # noqa: E402
from app.ml.service.contracts import ImageJob  # noqa: E402
from app.modelsvc.ray_backend import RayOptions, batch_groups, deployment_options  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).with_name("ray_scenario.py")
TIMEOUT_S = 150  # start, deploy, 2 x 32 PGD-5 jobs, shutdown: 33-85 s measured on 2 cores at load average 12-17
UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::"}  # 0.0.0.0 / :: are listening sockets' peers


def namespace_available() -> str | None:
    """None when `unshare -n` works here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs util-linux `unshare` and iproute2 `ip`"
    probe = subprocess.run([*UNSHARE, "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`{' '.join(UNSHARE)}` is not permitted here (needs root or CAP_SYS_ADMIN): {probe.stderr.strip()}"
    return None


def serve_errors(temp_dir: Path) -> str:
    """The error lines of Serve's controller log (a replica that failed to start says why only there)."""
    lines = []
    for log in temp_dir.glob("session_*/logs/serve/controller_*.log"):
        lines += [line for line in log.read_text(errors="replace").splitlines() if "Error" in line]
    return "\n".join(lines[-20:])


def test_options_follow_the_settings_and_never_cap_batches_below_max_batch() -> None:
    settings = Settings(environment="test", service_max_batch=24, service_queue_size=500)
    fixed = deployment_options(settings, RayOptions(replicas=2, gpus_per_replica=1))
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    assert fixed["ray_actor_options"] == {"num_gpus": 1, "num_cpus": 1.0}
    assert fixed["max_ongoing_requests"] >= settings.service_max_batch  # Serve's default of 5 would cap batches
    assert fixed["max_queued_requests"] == 500
    scaling = deployment_options(settings, RayOptions(replicas=1, max_replicas=4, gpus_per_replica=0.5))
    assert "num_replicas" not in scaling
    assert scaling["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 24}
    with pytest.raises(ValueError, match="max-replicas"):
        RayOptions(replicas=3, max_replicas=2)


def test_one_gpu_per_replica_by_default_only_where_there_are_gpus_and_cuda_is_allowed() -> None:
    auto, cpu = Settings(environment="test", device="auto"), Settings(environment="test", device="cpu")
    assert RayOptions().resolved(auto, cluster_gpus=4).gpus_per_replica == 1.0
    assert RayOptions().resolved(auto, cluster_gpus=0).gpus_per_replica == 0.0
    assert RayOptions().resolved(cpu, cluster_gpus=4).gpus_per_replica == 0.0
    assert RayOptions(gpus_per_replica=0.5).resolved(cpu, cluster_gpus=4).gpus_per_replica == 0.5
    assert deployment_options(cpu, RayOptions())["ray_actor_options"]["num_gpus"] == 0.0


def test_a_mixed_batch_is_split_by_batch_key_in_order() -> None:
    def job(attack: str, index: int) -> ImageJob:
        return ImageJob(opponent="fashion-cnn", attack=attack, params=(), image_index=index, eps=0.1, seed=index)

    jobs = [job("pgd", 0), job("fgsm", 1), job("pgd", 2), job("fgsm", 3), job("pgd", 4)]
    assert batch_groups(jobs) == [[0, 2, 4], [1, 3]]


@pytest.mark.slow
def test_deploy_generate_by_handle_and_over_http_and_shut_down() -> None:
    reason = namespace_available()
    if reason is not None:
        pytest.skip(reason)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)  # a local instance, never a cluster someone configured
    temp_dir = tempfile.mkdtemp(prefix="arena-ray-")  # Ray's sockets live here: the path must stay short
    inner = f"ip link set lo up && exec {sys.executable} {SCENARIO} --jobs 32 --steps 5 --temp-dir {temp_dir}"
    process = subprocess.Popen(
        [*UNSHARE, "sh", "-c", inner],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # unshare --kill-child then takes the whole PID namespace down
        stdout, stderr = process.communicate()
        pytest.fail(f"the Ray scenario did not finish within {TIMEOUT_S} s:\n{stderr[-3000:]}")
    finally:
        serve_logs = serve_errors(Path(temp_dir))
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert process.returncode == 0, f"{stderr[-3000:]}\nServe's log:\n{serve_logs}"
    report = json.loads(stdout.strip().splitlines()[-1])

    for path in ("handle", "http"):
        seen = report[path]
        assert seen["count"] == 32
        checks = ("true_labels_match", "labels_in_range", "clean_correct", "within_eps", "uint8_28x28")
        assert all(seen[check] for check in checks), (path, seen)
        assert seen["probs_sum_to_1"] and seen["echo_seed"], (path, seen)
    assert report["same_images"], "the same job gives the same image by handle and over HTTP (any batch)"
    remote = report["health"]["remote"]
    assert remote["backend"] == "ray" and remote["protocol"] == 1
    assert remote["jobs_run"] == 64
    assert 1 < remote["largest_batch"] <= report["max_batch"], "Serve batched concurrent requests"
    assert report["opponents"] == ["fashion-cnn"] and report["attacks"] > 0
    assert set(report["tcp_peers"]) <= LOOPBACK, report["tcp_peers"]


def test_the_cli_refuses_impossible_replica_options_before_starting_ray() -> None:
    from typer.testing import CliRunner

    from app.cli import app

    result = CliRunner().invoke(app, ["modelsvc", "--backend", "ray", "--replicas", "3", "--max-replicas", "2"])
    assert result.exit_code == 1
    assert "--max-replicas (2) must be 0 (a fixed number) or at least --replicas (3)" in result.output
