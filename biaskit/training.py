"""The trainer, and the interface that training strategies implement.

The trainer owns the loop (epochs, batches, optimiser, progress bar); a `Strategy`
decides the loss and may reshape the batch. A strategy receives images, labels and
sample indices but never the cue values or the aligned flags, so a debiasing method
cannot cheat with group labels it would not have in practice.

What the interface allows, and which hook to use:

- a loss on input gradients (double backprop): set ``batch.images.requires_grad_()``
  in `loss` and call ``torch.autograd.grad(..., create_graph=True)``;
- a second model or per-sample statistics across epochs (Learning from Failure,
  Just Train Twice): build them in `setup`, update them in `loss` or
  `on_epoch_end` using ``batch.index``, and step an extra optimiser yourself;
- a different sampling of the training set (upweighting by repetition): `epoch_order`;
- batch augmentation (occlusion): `augment`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import BiasedData
from .errors import UsageError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Batch:
    """A training batch: images ``(B, C, H, W)`` in [0, 1], labels and dataset indices ``(B,)``."""

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor


@dataclasses.dataclass
class TrainContext:
    """Training state shared with a strategy: the model, the split size, the device and the RNG."""

    model: torch.nn.Module
    num_samples: int
    num_classes: int
    device: torch.device
    generator: torch.Generator
    epochs: int
    lr: float


class Strategy:
    """A training strategy. The default methods give plain empirical risk minimisation."""

    name = "strategy"

    def setup(self, context: TrainContext) -> None:
        """Called once before the first epoch."""

    def epoch_order(self, epoch: int, context: TrainContext) -> torch.Tensor:
        """Return the order (and multiplicity) of training indices for `epoch`."""
        return torch.randperm(context.num_samples, generator=context.generator)

    def augment(self, batch: Batch, context: TrainContext) -> Batch:
        """Return the batch to train on; must not modify `batch.images` in place."""
        return batch

    def loss(self, model: torch.nn.Module, batch: Batch, context: TrainContext) -> torch.Tensor:
        """Return the scalar loss to minimise for `batch`."""
        return F.cross_entropy(model(batch.images), batch.labels)

    def on_epoch_end(self, epoch: int, context: TrainContext) -> dict[str, float]:
        """Called after each epoch; the returned numbers are logged."""
        return {}

    def config(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclasses.dataclass
class TrainSettings:
    """Optimiser and loop settings. `max_steps` stops early, for quick presets."""

    epochs: int = 2
    batch_size: int = 300
    lr: float = 1e-5
    weight_decay: float = 0.0
    max_steps: int | None = None

    def __post_init__(self):
        if self.epochs < 1:
            raise UsageError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise UsageError(f"lr must be positive, got {self.lr}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"max_steps must be at least 1 (or None for no limit), got {self.max_steps}")


def train(
    model: torch.nn.Module,
    data: BiasedData,
    strategy: Strategy,
    settings: TrainSettings,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train `model` on ``data.train`` with Adam and `strategy`; return per-epoch logs.

    The model is left in eval mode on `device`, also when training raises. Batches are sliced from the split's
    tensors, so no per-item Python runs in the loop.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device).train()
    split = data.train
    context = TrainContext(
        model, len(split), data.num_classes, device, generator, settings.epochs, settings.lr
    )
    strategy.setup(context)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )

    history: list[dict[str, float]] = []
    try:
        _run_epochs(model, split, strategy, settings, context, optimizer, history, progress)
    finally:
        model.eval()
    return history


def _run_epochs(model, split, strategy, settings, context, optimizer, history, progress) -> None:
    """Run the epochs of `train`, appending one log record per epoch to `history`."""
    device = context.device
    step = 0
    for epoch in range(settings.epochs):
        order = strategy.epoch_order(epoch, context)
        starts = range(0, len(order), settings.batch_size)
        # disable=None lets tqdm hide the bar when stderr is not a terminal (logs, CI).
        label = f"epoch {epoch + 1}" if settings.max_steps else f"epoch {epoch + 1}/{settings.epochs}"
        bar = tqdm(starts, desc=label, disable=None if progress else True, leave=False)
        total, count = 0.0, 0
        for start in bar:
            index = order[start : start + settings.batch_size]
            batch = Batch(
                split.images[index].to(device), split.labels[index].to(device), index.to(device)
            )
            batch = strategy.augment(batch, context)
            loss = strategy.loss(model, batch, context)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            total += loss.item() * len(index)
            count += len(index)
            bar.set_postfix(loss=f"{total / count:.4f}")
            step += 1
            if settings.max_steps is not None and step >= settings.max_steps:
                break
        record = {"epoch": epoch + 1, "loss": total / max(count, 1), "steps": step}
        record.update(strategy.on_epoch_end(epoch, context))
        history.append(record)
        log.info("epoch %d: loss %.4f", epoch + 1, record["loss"])
        if settings.max_steps is not None and step >= settings.max_steps:
            break
