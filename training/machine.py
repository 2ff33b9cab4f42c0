"""What machine a measurement ran on: one description for every benchmark that records timings
(the serving bench, the public-data benchmarks) and one count of the cores this process may use."""

from __future__ import annotations

import os
import platform
from pathlib import Path


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
