"""Accuracy by split and group, confusion matrices and the counterfactual cue check."""

from __future__ import annotations

import math
from typing import Any

import torch

from .data import BiasedData, Split, to_unit_float


@torch.no_grad()
def predict(
    model: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 256, device="cpu"
) -> torch.Tensor:
    """Return the predicted class ``(N,)`` for images ``(N, C, H, W)``, in eval mode.

    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        outputs = [
            model(images[start : start + batch_size].to(device)).argmax(dim=1).cpu()
            for start in range(0, len(images), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, dtype=torch.long)


def _rate(hits: torch.Tensor) -> float | None:
    """Return the mean of a bool tensor, or None for an empty group (not NaN, for JSON)."""
    return hits.float().mean().item() if len(hits) else None


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return counts ``(num_classes, num_classes)``: row = true class, column = predicted."""
    flat = labels * num_classes + predictions
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def split_metrics(predictions: torch.Tensor, split: Split, num_classes: int) -> dict[str, Any]:
    """Return accuracy overall, on aligned and on conflicting samples, and the confusion matrix."""
    correct = predictions == split.labels
    return {
        "accuracy": _rate(correct),
        "aligned_accuracy": _rate(correct[split.aligned]),
        "conflicting_accuracy": _rate(correct[~split.aligned]),
        "aligned_count": int(split.aligned.sum()),
        "conflicting_count": int((~split.aligned).sum()),
        "confusion": confusion_matrix(split.labels, predictions, num_classes).tolist(),
    }


@torch.no_grad()
def counterfactual_follow_rate(
    model: torch.nn.Module,
    data: BiasedData,
    *,
    max_images: int = 1000,
    device="cpu",
) -> dict[str, Any] | None:
    """Redraw test images with class k's cue for every k and measure how often the model predicts k.

    Only pairs where k differs from the true label count, so a correct shape-based
    prediction never counts as following the cue. Returns None when the bias has
    fewer cue values than there are classes (for example plain grayscale).
    """
    bias = data.bias
    if bias.num_values < data.num_classes:
        return None
    base = to_unit_float(data.test.base[:max_images])
    labels = data.test.labels[:max_images]
    follows, per_cue = [], []
    for cue in range(data.num_classes):
        values = torch.full_like(labels, cue)
        predictions = predict(model, bias.render(base, values), device=device)
        other = labels != cue
        hit = predictions[other] == cue
        follows.append(hit)
        per_cue.append(_rate(hit))
    return {
        "follow_rate": _rate(torch.cat(follows)),
        "per_cue": per_cue,
        "images": len(labels),
    }


def subset(split: Split, count: int | None, seed: int = 0) -> Split:
    """Return a fixed random subset of `count` samples (the whole split when count is None or larger)."""
    if count is None or count >= len(split):
        return split
    index = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:count]
    return Split(split.images[index], split.labels[index], split.cue_values[index],
                 split.aligned[index], split.base[index])


def evaluate(
    model: torch.nn.Module,
    data: BiasedData,
    *,
    device="cpu",
    train_images: int | None = 10000,
    counterfactual_images: int = 1000,
) -> dict[str, Any]:
    """Return metrics for every split plus the counterfactual check, as plain JSON types.

    Training accuracy is measured on a fixed random subset of `train_images` samples
    (all of them when None), because it only confirms the fit and a full pass over
    48,000 images would double the evaluation time on a CPU.
    """
    metrics: dict[str, Any] = {}
    for name in ("train", "val", "test"):
        split = data.split(name)
        if name == "train":
            split = subset(split, train_images)
        predictions = predict(model, split.images, device=device)
        metrics[name] = split_metrics(predictions, split, data.num_classes)
        metrics[name]["count"] = len(split)
    metrics["counterfactual"] = counterfactual_follow_rate(
        model, data, max_images=counterfactual_images, device=device
    )
    return metrics


def summary_line(metrics: dict[str, Any]) -> str:
    """Return a one-line human summary of `evaluate`'s output."""

    def percent(value):
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"

    parts = [f"{name} {percent(metrics[name]['accuracy'])}" for name in ("train", "val", "test")]
    parts.append(f"val conflicting {percent(metrics['val']['conflicting_accuracy'])}")
    counterfactual = metrics.get("counterfactual")
    if counterfactual:
        parts.append(f"follows cue {percent(counterfactual['follow_rate'])}")
    return ", ".join(parts)
