"""Where a run happened, written next to its timings (cards, benchmark results), so a wall time can be compared
with one measured elsewhere."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    fallback = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return fallback


def cpu_summary() -> str:
    """Core count and CPU model: what a model card records as its training machine."""
    return f"{os.cpu_count()} CPU cores, {cpu_model()}"


def machine_line() -> str:
    """Where a benchmark ran: CPU model and count, GPU if any, Python, torch and its thread count."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu_model()}, {os.cpu_count()} CPU cores, {gpu}, {platform.system()} {platform.machine()}, Python "
        f"{platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} intra-op threads)"
    )


def load_average() -> str:
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"
