"""Datasets with a planted cue: the base images, the bias that renders a cue, the splits.

The core only assigns cue values to samples; what a value looks like (a stroke
colour, a background, a patch) is up to the `Bias` plugin. Assignment follows one
scheme for every bias:

- train and validation: a fraction `aligned_ratio` of the samples gets the cue value
  of its own class (value == label); the rest gets a value drawn uniformly from all
  values, which can be the class's own value by chance;
- test: every sample gets the value of class ``(label + test_offset) mod num_values``,
  so with a non-zero offset no test sample carries its own class's cue.

Each split records, per sample, the cue value it got and whether it is aligned
(cue value equal to its label's), so evaluation can report both groups.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from .errors import UsageError


@dataclasses.dataclass
class BaseData:
    """A labelled grayscale image dataset, as loaded from disk.

    Images are ``(N, H, W)`` uint8 tensors and labels ``(N,)`` int64 in
    ``[0, num_classes)``.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class Bias:
    """A cue drawn onto grayscale images; subclass and implement `render`.

    `value_names[k]` names cue value k. Value k is the cue of class k, so a bias
    with fewer values than classes cannot be aligned with every class.
    """

    name = "bias"
    value_names: list[str] = []
    out_channels = 3

    @property
    def num_values(self) -> int:
        return len(self.value_names)

    def render(self, images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Draw the cue onto a batch in one vectorised pass.

        images: ``(N, 1, H, W)`` float in [0, 1]; values: ``(N,)`` int64 in
        ``[0, num_values)``. Returns ``(N, out_channels, H, W)`` float in [0, 1].
        """
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Return the parameters that define this bias, for metadata and cache keys."""
        return {"name": self.name}


@dataclasses.dataclass
class Split:
    """One split of a biased dataset, held as whole tensors.

    images: ``(N, C, H, W)`` float32 in [0, 1]; labels, cue_values: ``(N,)`` int64;
    aligned: ``(N,)`` bool; base: ``(N, H, W)`` uint8, the images before the cue.
    """

    images: torch.Tensor
    labels: torch.Tensor
    cue_values: torch.Tensor
    aligned: torch.Tensor
    base: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass
class BiasedData:
    """Train, validation and test splits with a planted cue, and how they were made."""

    name: str
    bias: Bias
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    config: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_chans(self) -> int:
        return self.train.images.shape[1]

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise UsageError(f"unknown split {name!r}; choose one of: train, val, test")
        return getattr(self, name)


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """Convert ``(N, H, W)`` uint8 images to ``(N, 1, H, W)`` float32 in [0, 1]."""
    return images.unsqueeze(1).to(torch.float32).div_(255.0)


def _assign_values(
    labels: torch.Tensor, num_values: int, aligned_ratio: float, generator: torch.Generator
) -> torch.Tensor:
    aligned_count = round(aligned_ratio * len(labels))
    order = torch.randperm(len(labels), generator=generator)
    values = labels % num_values
    conflicting = order[aligned_count:]
    values[conflicting] = torch.randint(0, num_values, (len(conflicting),), generator=generator)
    return values


def _make_split(images: torch.Tensor, labels: torch.Tensor, values: torch.Tensor, bias: Bias) -> Split:
    rendered = bias.render(to_unit_float(images), values)
    if rendered.shape[0] != len(labels) or rendered.dim() != 4:
        raise ValueError(
            f"bias {bias.name!r} returned shape {tuple(rendered.shape)}; "
            f"expected ({len(labels)}, C, H, W)"
        )
    aligned = values == labels % max(bias.num_values, 1)
    return Split(rendered.contiguous(), labels.clone(), values, aligned, images)


def make_biased_data(
    base: BaseData,
    bias: Bias,
    *,
    aligned_ratio: float = 0.95,
    test_offset: int = 5,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> BiasedData:
    """Split `base` into train/validation/test and plant `bias` on every image.

    The same arguments give the same tensors, bit for bit. The validation part is a
    random `val_fraction` of the base training images (12,000 of 60,000 at 0.2).
    """
    if not 0.0 <= aligned_ratio <= 1.0:
        raise UsageError(f"aligned_ratio must be in [0, 1], got {aligned_ratio}")
    if not 0.0 < val_fraction < 1.0:
        raise UsageError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if bias.num_values < 1:
        raise UsageError(f"bias {bias.name!r} defines no cue values")
    generator = torch.Generator().manual_seed(seed)

    order = torch.randperm(len(base.train_labels), generator=generator)
    val_count = round(val_fraction * len(order))
    val_index, train_index = order[:val_count], order[val_count:]

    splits = {}
    for split_name, index in (("train", train_index), ("val", val_index)):
        labels = base.train_labels[index]
        values = _assign_values(labels, bias.num_values, aligned_ratio, generator)
        splits[split_name] = _make_split(base.train_images[index], labels, values, bias)
    test_values = (base.test_labels + test_offset) % bias.num_values
    splits["test"] = _make_split(base.test_images, base.test_labels, test_values, bias)

    config = {
        "dataset": base.name,
        "bias": bias.config(),
        "aligned_ratio": aligned_ratio,
        "test_offset": test_offset,
        "val_fraction": val_fraction,
        "seed": seed,
        "source": base.source,
    }
    return BiasedData(
        name=f"{base.name}+{bias.name}",
        bias=bias,
        class_names=list(base.class_names),
        config=config,
        **splits,
    )


def cache_dir() -> Path:
    """Return biaskit's cache folder: ``$BIASKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/biaskit``."""
    explicit = os.environ.get("BIASKIT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "biaskit"
