"""Recipes: a named, complete description of how to build data and train a model.

A recipe plugin is a factory ``recipe(preset: str = "quick") -> Recipe``. Everything
that changes the trained weights is in the recipe, so its hash is the cache key of
the checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from .training import TrainSettings


@dataclasses.dataclass
class Recipe:
    """Training specification: data, cue, model, strategy and optimiser settings.

    `data_params` go to `make_biased_data` (aligned_ratio, test_offset, val_fraction).
    """

    name: str
    preset: str
    dataset: str
    bias: str
    model: str
    settings: TrainSettings
    strategy: str = "erm"
    bias_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    model_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    strategy_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    data_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""

    def with_dataset(self, dataset: str | None) -> "Recipe":
        return self if dataset is None else dataclasses.replace(self, dataset=dataset)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def cache_key(self, seed: int) -> str:
        """Return a short hash of everything that determines the trained weights."""
        payload = self.to_dict()
        payload.pop("description")
        payload["seed"] = seed
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def recipe_from_dict(values: dict[str, Any]) -> Recipe:
    """Rebuild a `Recipe` from `Recipe.to_dict()` output, as stored in checkpoint metadata."""
    values = dict(values)
    values["settings"] = TrainSettings(**values["settings"])
    return Recipe(**values)
