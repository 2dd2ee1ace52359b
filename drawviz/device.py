"""Where training runs: the device picked, and what it is (for checkpoints and model cards)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["describe_hardware", "pick_device"]


def describe_hardware(device: torch.device) -> dict:
    """What a run trained on: the GPU's name or the CPU model, and the thread count (for model cards)."""
    if device.type == "cuda":
        return {"device": "cuda", "name": torch.cuda.get_device_name(device), "torch": str(torch.__version__)}
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        import platform

        name = platform.processor() or platform.machine()
    return {
        "device": "cpu",
        "name": name,
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "torch": str(torch.__version__),
    }


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no CUDA GPU; use device='auto' or 'cpu'")
    return device
