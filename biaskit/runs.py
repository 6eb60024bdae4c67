"""Run folders: every command writes its config, metrics, figures and summary into one."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any

import torch

from .api import TrainedModel
from .checkpoints import atomic_write_bytes, atomic_write_json
from .data import BiasedData


def create_run_dir(kind: str, name: str, out: str | os.PathLike | None = None) -> Path:
    """Create ``<out>/<timestamp>-<kind>-<name>`` (out defaults to ``$BIASKIT_RUNS_DIR`` or ``./runs``)."""
    base = Path(out if out is not None else os.environ.get("BIASKIT_RUNS_DIR", "runs")).expanduser()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe_name = name.replace(os.sep, "_")
    for attempt in range(1000):
        suffix = f"-{attempt + 1}" if attempt else ""
        folder = base / f"{stamp}-{kind}-{safe_name}{suffix}"
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a new run folder under {str(base)!r}")


@dataclasses.dataclass
class RunContext:
    """What a probe or attack receives from `biaskit run`.

    `load_model(spec)` returns another ``(TrainedModel, BiasedData)`` pair with the
    same seed, device and data options, and trains it on first use. A probe uses it
    to put a control model beside the one under study.
    """

    model: TrainedModel
    data: BiasedData
    out_dir: Path
    device: torch.device
    seed: int = 0
    progress: bool = True
    load_model: Any = None

    def save_json(self, name: str, value: Any) -> Path:
        path = self.out_dir / name
        atomic_write_json(path, value)
        return path

    def save_text(self, name: str, text: str) -> Path:
        path = self.out_dir / name
        atomic_write_bytes(path, text.encode())
        return path

    def save_figure(self, figure, name: str) -> Path:
        """Save a matplotlib figure as PNG in the run folder and close it."""
        import matplotlib.pyplot as plt

        path = self.out_dir / name
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        return path


def to_jsonable(value: Any) -> Any:
    """Convert tensors and paths inside `value` to plain JSON types."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, sort_keys=True)
