"""The Python API: load data, build and train models, find or load checkpoints.

Everything the command line does goes through these functions, so a notebook gets
the same caching, checks and error messages.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import checkpoints
from .data import BaseData, BiasedData, cache_dir, make_biased_data
from .errors import BiaskitError, UsageError
from .evaluation import evaluate
from .plugins import registries
from .recipes import Recipe, recipe_from_dict
from .training import train

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainedModel:
    """A model in eval mode with the recipe and seed it came from and its checkpoint path."""

    model: torch.nn.Module
    recipe: Recipe
    seed: int
    metadata: dict[str, Any]
    path: Path | None

    @property
    def label(self) -> str:
        return f"{self.recipe.name}/{self.recipe.preset}"

    @property
    def default_layer(self) -> str:
        return getattr(self.model, "default_layer", "")


def resolve_device(device: str = "auto") -> torch.device:
    """Map 'auto', 'cpu' or 'cuda' to a torch device; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was requested but no CUDA device is available; use --device cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"invalid device {device!r}; choose auto, cpu or cuda")
    return torch.device(device)


def load_base(name: str, *, data_dir: str | None = None, download: bool = False) -> BaseData:
    """Load base dataset `name` through the dataset registry."""
    return registries().datasets.create(name, data_dir=data_dir, download=download)


def get_recipe(name: str, preset: str = "quick", dataset: str | None = None) -> Recipe:
    """Build recipe `name` at `preset`, optionally on another base dataset."""
    recipes = registries().recipes
    if dataset is None:
        return recipes.create(name, preset=preset)
    registries().datasets.get(dataset)
    # A recipe may tune itself per dataset; one that takes no `dataset` is moved as is.
    if "dataset" in recipes.get(name).parameters():
        return recipes.create(name, preset=preset, dataset=dataset)
    return recipes.create(name, preset=preset).with_dataset(dataset)


def build_data(
    recipe: Recipe, *, seed: int = 0, data_dir: str | None = None, download: bool = False
) -> BiasedData:
    """Build the biased dataset that `recipe` trains on."""
    base = load_base(recipe.dataset, data_dir=data_dir, download=download)
    bias = registries().biases.create(recipe.bias, **recipe.bias_params)
    return make_biased_data(base, bias, seed=seed, **recipe.data_params)


def build_model(recipe: Recipe, num_classes: int, in_chans: int) -> torch.nn.Module:
    """Build the untrained model of `recipe`."""
    return registries().models.create(
        recipe.model, num_classes=num_classes, in_chans=in_chans, **recipe.model_params
    )


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("biaskit", "torch", "torchvision", "timm", "safetensors", "captum", "torchattacks"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def checkpoint_path(recipe: Recipe, seed: int) -> Path:
    """Return where the checkpoint of `recipe` with `seed` is cached."""
    folder = f"{recipe.name}-{recipe.preset}-{recipe.dataset}-seed{seed}-{recipe.cache_key(seed)}"
    return cache_dir() / "models" / folder / "model.safetensors"


def train_recipe(
    recipe: Recipe,
    *,
    seed: int = 0,
    data: BiasedData | None = None,
    data_dir: str | None = None,
    download: bool = False,
    retrain: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[TrainedModel, BiasedData]:
    """Return the trained model of `recipe`, training and caching it unless a checkpoint exists.

    `data` may be passed to reuse an already built dataset; it must come from the
    same recipe and seed.
    """
    path = checkpoint_path(recipe, seed)
    if data is None:
        data = build_data(recipe, seed=seed, data_dir=data_dir, download=download)
    if not retrain and paths_exist(path):
        return load_checkpoint(path, device=device), data

    device = torch.device(device)
    # Seed here, not only in `train`, so the initial weights depend on the seed alone
    # and not on whatever consumed the global RNG before.
    torch.manual_seed(seed)
    model = build_model(recipe, data.num_classes, data.in_chans)
    message = f"training {recipe.name}/{recipe.preset} on {recipe.dataset} (seed {seed}); no cached checkpoint"
    log.info(message)
    if progress:
        tqdm.write(message, file=sys.stderr)
    history = train(
        model, data, registries().strategies.create(recipe.strategy, **recipe.strategy_params),
        recipe.settings, seed=seed, device=device, progress=progress,
    )
    metrics = evaluate(model, data, device=device)
    metadata = {
        "recipe": recipe.to_dict(),
        "seed": seed,
        "data": dict(data.config, num_classes=data.num_classes, in_chans=data.in_chans),
        "history": history,
        "metrics": metrics,
        "versions": library_versions(),
        "device": str(device),
    }
    checkpoints.save(path, model, metadata)
    stored = checkpoints.read_metadata(path)
    return TrainedModel(model.eval(), recipe, seed, stored, path), data


def paths_exist(path: Path) -> bool:
    weights, meta = checkpoints.paths_for(path)
    return weights.exists() and meta.exists()


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a checkpoint written by `train_recipe`; bad files raise `BiaskitError`."""
    metadata = checkpoints.read_metadata(path)
    try:
        recipe = recipe_from_dict(metadata["recipe"])
        seed = int(metadata["seed"])
        num_classes = int(metadata["data"]["num_classes"])
        in_chans = int(metadata["data"]["in_chans"])
    except (KeyError, TypeError, ValueError) as error:
        raise BiaskitError(
            f"checkpoint {str(path)!r} has incomplete metadata (missing {error}); retrain it with 'biaskit train RECIPE --retrain'"
        ) from None
    state = checkpoints.load_state(path, metadata)
    model = build_model(recipe, num_classes, in_chans)
    checkpoints.load_into(model, state, str(path))
    model.to(device).eval()
    return TrainedModel(model, recipe, seed, metadata, checkpoints.paths_for(path)[0])


def load_model(
    spec: str,
    *,
    preset: str = "quick",
    dataset: str | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    download: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[TrainedModel, BiasedData]:
    """Return a model and its dataset from a recipe name (trained on first use) or a checkpoint path."""
    # A registered recipe name wins over a file of the same name in the current folder.
    looks_like_path = (
        os.sep in spec
        or spec.endswith((".safetensors", ".json"))
        or (spec not in registries().recipes and Path(spec).exists())
    )
    if looks_like_path:
        if not Path(spec).exists() and not paths_exist(Path(spec)):
            raise UsageError(f"checkpoint {spec!r} not found; pass a recipe name or an existing checkpoint path")
        trained = load_checkpoint(spec, device=device)
        if dataset is not None and dataset != trained.recipe.dataset:
            raise UsageError(
                f"checkpoint {spec!r} was trained on {trained.recipe.dataset!r}, not {dataset!r}; "
                "drop --dataset or pass a matching checkpoint"
            )
        data = build_data(trained.recipe, seed=trained.seed, data_dir=data_dir, download=download)
        return trained, data
    recipe = get_recipe(spec, preset, dataset)
    return train_recipe(
        recipe, seed=seed, data_dir=data_dir, download=download, device=device, progress=progress
    )
