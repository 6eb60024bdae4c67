"""The work behind `biaskit train` and `biaskit run`, callable from Python as well."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from . import api
from .evaluation import summary_line
from .figures import confusion_figure
from .plugins import registries
from .runs import RunContext, create_run_dir, to_jsonable

log = logging.getLogger(__name__)


def _model_loader(preset, dataset, seed, data_dir, download, device, progress):
    def load(spec: str):
        return api.load_model(
            spec, preset=preset, dataset=dataset, seed=seed, data_dir=data_dir,
            download=download, device=device, progress=progress,
        )

    return load


def write_model_report(context: RunContext) -> str:
    """Write metrics.json, confusion matrices and summary.txt for `context.model`; return the summary."""
    trained = context.model
    metrics = trained.metadata["metrics"]
    context.save_json("metrics.json", {"model": trained.label, "metrics": metrics,
                                       "history": trained.metadata.get("history")})
    for split in ("val", "test"):
        title = f"{trained.label} on {trained.recipe.dataset}, {split} split"
        figure = confusion_figure(metrics[split]["confusion"], context.data.class_names, title)
        context.save_figure(figure, f"confusion-{split}.png")
    lines = [
        f"model: {trained.label} ({trained.recipe.model} {trained.recipe.model_params}) "
        f"on {trained.recipe.dataset} with bias {trained.recipe.bias}, seed {trained.seed}",
        f"checkpoint: {trained.path}",
        "accuracy: " + summary_line(metrics),
    ]
    text = "\n".join(lines) + "\n"
    context.save_text("summary.txt", text)
    return text


def train_command(
    recipe_name: str,
    *,
    preset: str = "quick",
    dataset: str | None = None,
    seed: int = 0,
    out: str | None = None,
    retrain: bool = False,
    data_dir: str | None = None,
    download: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> tuple[Path, str]:
    """Train (or reuse) recipe `recipe_name` and write a run folder; return its path and summary."""
    torch_device = api.resolve_device(device)
    recipe = api.get_recipe(recipe_name, preset, dataset)
    started = time.perf_counter()
    trained, data = api.train_recipe(
        recipe, seed=seed, data_dir=data_dir, download=download, retrain=retrain,
        device=torch_device, progress=progress,
    )
    run_dir = create_run_dir("train", f"{recipe.name}-{recipe.dataset}", out)
    context = RunContext(trained, data, run_dir, torch_device, seed, progress)
    context.save_json("config.json", {"command": "train", "recipe": recipe.to_dict(), "seed": seed,
                                      "device": str(torch_device), "data": data.config})
    summary = write_model_report(context)
    summary += f"time: {time.perf_counter() - started:.1f} s\n"
    return run_dir, summary


def run_command(
    kind: str,
    name: str,
    *,
    model: str = "lazy",
    params: dict[str, Any] | None = None,
    preset: str = "quick",
    dataset: str | None = None,
    seed: int = 0,
    out: str | None = None,
    data_dir: str | None = None,
    download: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Run probe or attack `name` on `model` and write a run folder; return its path and results."""
    registry = registries().kind(kind)
    job = registry.create(name, **(params or {}))
    torch_device = api.resolve_device(device)
    trained, data = _model_loader(preset, dataset, seed, data_dir, download, torch_device, progress)(model)
    # Comparison models load on the studied model's dataset, which a checkpoint path
    # fixes even when --dataset is not given.
    load = _model_loader(preset, trained.recipe.dataset, seed, data_dir, download, torch_device, progress)

    run_dir = create_run_dir(registry.kind, name, out)
    context = RunContext(trained, data, run_dir, torch_device, seed, progress, load)
    context.save_json("config.json", to_jsonable({
        "command": "run", "kind": registry.kind, "name": name, "params": params or {},
        "model": model, "checkpoint": trained.path, "recipe": trained.recipe.to_dict(),
        "seed": seed, "device": str(torch_device), "data": data.config,
    }))
    started = time.perf_counter()
    results = job.run(context)
    results = dict(results or {}, seconds=round(time.perf_counter() - started, 2))
    context.save_json("metrics.json", to_jsonable(results))
    return run_dir, results
