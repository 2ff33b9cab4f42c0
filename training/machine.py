"""What machine a measurement ran on: one description for every benchmark that records timings
(the speed bench, the public-data benchmarks), one count of the cores this process may use, and
the fp32 matrix-multiply rate that bounds what a model can do on it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0))


def machine_description() -> str:
    """"<cores> cores, <CPU model>, <OS> <release>", for the record next to every timing."""
    model_name = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    return f"{available_cores()} cores, {model_name}, {platform.system()} {platform.release()}"


MATMUL_SCRIPT = """
import json, os, statistics, sys, time
import torch
size, repeats = int(sys.argv[1]), int(sys.argv[2])
threads = len(os.sched_getaffinity(0))
torch.set_num_threads(threads)
a, b = torch.randn(size, size), torch.randn(size, size)
torch.matmul(a, b)  # warm-up: thread pool, caches
rates = []
for _ in range(repeats):
    started = time.perf_counter()
    torch.matmul(a, b)
    rates.append(2 * size ** 3 / (time.perf_counter() - started) / 1e9)
print(json.dumps({"best": max(rates), "median": statistics.median(rates), "threads": threads, "rates": rates}))
"""


def measure_matmul(size: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """fp32 GFLOP/s of torch.matmul on two size x size matrices, in a fresh process (a process that
    already ran a model has other thread pools and caches warm), with torch using every core this
    process may run on. Returns best, median, threads and every repeat's rate."""
    result = subprocess.run([sys.executable, "-c", MATMUL_SCRIPT, str(size), str(repeats)],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"the matmul measurement failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
