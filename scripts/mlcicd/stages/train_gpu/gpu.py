"""The runner's GPUs: what torch.cuda and nvidia-smi see, and the check that a GPU is there."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from typing import Any

from mlcicd import github
from mlcicd.errors import UsageError

from .decide import NAME


def detect_gpus() -> dict[str, Any]:
    """GPUs seen by torch.cuda and nvidia-smi (either may be missing on a runner)."""
    info: dict[str, Any] = {
        "count": 0,
        "names": [],
        "memory_mib": [],
        "driver": None,
        "cuda": None,
        "torch": None,
        "source": None,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            props = [torch.cuda.get_device_properties(i) for i in range(count)]
            info.update(
                count=count,
                names=[p.name for p in props],
                memory_mib=[p.total_memory // 2**20 for p in props],
                source="torch.cuda",
            )
    except Exception as exc:  # noqa: BLE001 - a broken CUDA install must not hide nvidia-smi's answer
        info["torch_error"] = f"{type(exc).__name__}: {exc}"
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            rows = [
                [c.strip() for c in line.split(",")]
                for line in out.stdout.strip().splitlines()
                if line.strip()
            ]
            if out.returncode == 0 and rows:
                info["driver"] = rows[0][2]
                if not info["count"]:
                    info.update(
                        count=len(rows),
                        names=[r[0] for r in rows],
                        memory_mib=[int(float(r[1])) for r in rows],
                        source="nvidia-smi",
                    )
        except (OSError, subprocess.SubprocessError, IndexError, ValueError):
            pass
    return info


def check_gpu(gpus: dict[str, Any], require: bool) -> None:
    if gpus["count"]:
        return
    runner = os.environ.get("RUNNER_NAME", platform.node())
    why = gpus.get("torch_error") or (
        "torch is not importable" if gpus["torch"] is None else f"torch {gpus['torch']} sees no CUDA device"
    )
    if require:
        raise UsageError(
            "no GPU on this runner",
            f"runner `{runner}` has no GPU ({why}; nvidia-smi "
            f"{'found none' if shutil.which('nvidia-smi') else 'is not installed'}). "
            "Run this job on a GPU runner (e.g. `runs-on: [self-hosted, gpu]`, the `gpu-runner` input of "
            "train.yml) "
            "or set `require-gpu: false` to train on CPU.",
        )
    github.warning(
        f"runner `{runner}` has no GPU ({why}): TRAINING ON CPU because require-gpu is false.",
        title=f"{NAME}: training on CPU",
    )
