"""The CPU a benchmark ran on, as the tables name it: its model and the vector extensions that matter here."""
from __future__ import annotations

import platform
import re
import subprocess


def cpu_model_and_flags(wanted: tuple[str, ...]) -> tuple[str, list[str]]:
    """`lscpu`'s model name (else Python's idea of the processor) and those of `wanted` that its flags list, in
    `wanted`'s order."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        lscpu = ""
    name = re.search(r"Model name:\s+(.+)", lscpu)
    flags = re.search(r"Flags:\s+(.+)", lscpu)
    present = set(flags.group(1).split()) if flags else set()
    return (name.group(1).strip() if name else platform.processor() or platform.machine()), [f for f in wanted if f in present]
