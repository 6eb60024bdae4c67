"""Grad-CAM written by hand, and the same interface over Captum's `LayerGradCam`.

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017, arXiv:1610.02391) explains the score y^c of
class c through the activations A ``(N, K, h, w)`` of one convolutional layer:

    alpha_k = mean over positions (i, j) of  d y^c / d A_k[i, j]
    L^c     = ReLU(sum over channels k of  alpha_k * A_k)          shape (N, h, w)

L^c is then upsampled to the input size. As in the paper, y^c is the logit (before
softmax). Both classes here return the same `CAMResult`, so a probe can run either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from typing import Iterator, Union

import torch
import torch.nn.functional as F
from torch import nn

from biaskit.errors import UsageError

Target = Union[str, int, torch.Tensor]
UPSAMPLE_MODES = ("bilinear", "nearest", "none")
TARGET_CHOICES = "'predicted', 'true' (with labels), a class index, or an (N,) integer tensor of class indices"


@dataclasses.dataclass
class CAMResult:
    """Layer-resolution Grad-CAM maps and what they explain.

    maps: ``(N, h, w)`` float >= 0 at the layer's resolution (a graph is attached only
    with ``create_graph=True``); logits: ``(N, num_classes)``, detached;
    targets: ``(N,)`` int64, the class that each map explains.
    """

    maps: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor


def layer_names(model: nn.Module) -> list[str]:
    """Return the dotted names of every submodule of `model`, in definition order."""
    return [name for name, _ in model.named_modules() if name]


def _layer_hint(model: nn.Module, name: str = "") -> str:
    """Return a short list of valid layer names: close matches first, then top-level children."""
    names = layer_names(model)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6) if name else []
    children = [child for child, _ in model.named_children()]
    shown = list(dict.fromkeys(close + children))[:10]
    return ", ".join(shown) or "none"


def resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> tuple[str, nn.Module]:
    """Return ``(dotted name, module)`` for `layer`, a dotted name, a submodule, or None.

    None or ``""`` selects ``model.default_layer``. Raises `UsageError` naming the
    value and a few valid names when the layer is not part of `model`.
    """
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer and name:
                return name, module
        raise UsageError(
            f"layer {type(layer).__name__} is not a submodule of {type(model).__name__}; "
            f"pass one of its layer names, e.g. {_layer_hint(model)}"
        )
    name = layer or getattr(model, "default_layer", "")
    if not name:
        raise UsageError(
            f"model {type(model).__name__} sets no default_layer; pass a layer name, e.g. {_layer_hint(model)}"
        )
    if not isinstance(name, str):
        raise UsageError(f"invalid layer {name!r}; pass a dotted module name such as {_layer_hint(model)}")
    try:
        module = model.get_submodule(name)
    except AttributeError:
        raise UsageError(
            f"unknown layer {name!r} in {type(model).__name__}; valid names include: {_layer_hint(model, name)} "
            "(any dotted name from model.named_modules() works)"
        ) from None
    if module is model:
        raise UsageError(
            f"invalid layer {name!r}: it names the whole model; pick an inner layer, e.g. {_layer_hint(model)}"
        )
    return name, module


def check_images(images: torch.Tensor) -> None:
    """Raise `UsageError` unless `images` is a non-empty ``(N, C, H, W)`` floating-point tensor."""
    if not isinstance(images, torch.Tensor):
        raise UsageError(f"invalid images of type {type(images).__name__}; pass an (N, C, H, W) float tensor")
    if images.dim() != 4 or not images.is_floating_point() or images.shape[0] == 0:
        raise UsageError(
            f"invalid images of shape {tuple(images.shape)} and dtype {images.dtype}; "
            "pass a non-empty (N, C, H, W) float tensor (add a batch dimension with images[None])"
        )


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return repr(value)


def check_target(target: Target, labels: torch.Tensor | None, count: int) -> None:
    """Raise `UsageError` when `target` cannot name one class per image; class ranges are checked later."""
    if isinstance(target, str):
        if target not in ("predicted", "true") and not target.isdigit():
            raise UsageError(f"invalid target {target!r}; use {TARGET_CHOICES}")
        if target == "true":
            _check_labels(labels, count)
        return
    integer_tensor = isinstance(target, torch.Tensor) and not (
        target.is_floating_point() or target.is_complex() or target.dtype == torch.bool
    )
    if not (integer_tensor or (isinstance(target, int) and not isinstance(target, bool))):
        raise UsageError(f"invalid target {_describe(target)}; use {TARGET_CHOICES}")
    if integer_tensor and (target.dim() > 1 or (target.dim() == 1 and target.shape[0] != count)):
        raise UsageError(
            f"invalid target {_describe(target)} for {count} images; pass one class index per image, shape ({count},)"
        )


def _check_labels(labels: torch.Tensor | None, count: int) -> None:
    if labels is None:
        raise UsageError("target 'true' needs labels; pass labels=(N,) class indices or use target='predicted'")
    if not isinstance(labels, torch.Tensor) or labels.shape != (count,) or labels.is_floating_point():
        raise UsageError(
            f"invalid labels {_describe(labels)} for {count} images; pass ({count},) integer class indices"
        )


def select_targets(target: Target, logits: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Return the ``(N,)`` int64 class per image named by `target`, on the logits' device.

    logits: ``(N, num_classes)``. "predicted" takes the argmax of the logits, "true"
    takes `labels`. Raises `UsageError` for a class outside ``[0, num_classes)``.
    """
    count, num_classes = logits.shape
    check_target(target, labels, count)
    if isinstance(target, str) and target == "predicted":
        return logits.detach().argmax(dim=1)
    if isinstance(target, str) and target == "true":
        targets = labels
    elif isinstance(target, str):
        targets = torch.full((count,), int(target))
    elif isinstance(target, int):
        targets = torch.full((count,), target)
    else:
        targets = target.expand(count) if target.dim() == 0 else target
    targets = targets.to(device=logits.device, dtype=torch.int64)
    outside = (targets < 0) | (targets >= num_classes)
    if outside.any():
        bad = int(targets[outside][0])
        raise UsageError(
            f"invalid target class {bad} for a model with {num_classes} classes; use 0 to {num_classes - 1}"
        )
    return targets


def upsample(maps: torch.Tensor, size: tuple[int, int], mode: str | None = "bilinear") -> torch.Tensor:
    """Resize maps ``(N, h, w)`` to ``(N, *size)``; mode "bilinear" (align_corners=False), "nearest", or "none".

    Bilinear and nearest interpolation of maps >= 0 stay >= 0. "none" (or None)
    returns the maps unchanged.
    """
    if mode is None or mode == "none":
        return maps
    if mode not in UPSAMPLE_MODES:
        raise UsageError(f"invalid upsample mode {mode!r}; choose one of: {', '.join(UPSAMPLE_MODES)}")
    options = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(maps[:, None], size=tuple(size), mode=mode, **options)[:, 0]


def normalise_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map ``(..., H, W)`` by its own maximum into [0, 1], for display.

    A map that is zero everywhere stays zero (no division by zero, no NaN).
    """
    peak = maps.amax(dim=(-2, -1), keepdim=True)
    return torch.where(peak > 0, maps / peak.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))


@contextlib.contextmanager
def eval_state(model: nn.Module, *, freeze_parameters: bool) -> Iterator[None]:
    """Run the block with every module in eval mode and, optionally, every parameter frozen.

    Each module's own training flag and each parameter's ``requires_grad`` are
    restored on exit, after an exception too, so a model that is training (or one
    with some layers frozen by the caller) comes back exactly as it was.
    """
    modes = [(module, module.training) for module in model.modules()]
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    try:
        model.eval()
        if freeze_parameters:
            for parameter, _ in flags:
                parameter.requires_grad_(False)
        yield
    finally:
        for module, training in modes:
            module.training = training
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


@contextlib.contextmanager
def capture_layer(model: nn.Module, layer: nn.Module, *, detach: bool) -> Iterator[list[torch.Tensor]]:
    """Record the output of `layer` during forward passes run inside the block.

    Yields a list that receives one activation ``(N, K, h, w)`` per call of `layer`.
    The model runs in eval mode. With `detach`, the parameters are frozen and each
    activation is a fresh leaf that requires grad, so autograd records nothing before
    the layer. Without `detach`, the activation keeps its graph back to the input and
    the parameters. The hook is removed and the model's state restored on exit.
    """
    captured: list[torch.Tensor] = []

    def hook(module, inputs, output):
        if not isinstance(output, torch.Tensor):
            captured.append(output)
            return None
        activation = output
        if detach or not output.requires_grad:
            activation = output.detach().requires_grad_()
        captured.append(activation)
        # The rest of the network gets a copy: timm's ResNet blocks change a layer's
        # output in place (`x += shortcut`, ReLU(inplace=True)), which would otherwise
        # overwrite the captured values and reroute its gradient.
        return activation.clone()

    with eval_state(model, freeze_parameters=detach):
        handle = layer.register_forward_hook(hook)
        try:
            yield captured
        finally:
            handle.remove()


def _check_logits(logits: object, count: int, model: nn.Module) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != count:
        raise UsageError(
            f"model {type(model).__name__} returned {_describe(logits)}; Grad-CAM needs logits of shape "
            f"({count}, num_classes) from a classifier"
        )
    return logits


class _LayerMethod:
    """A Grad-CAM method bound to one model and one of its layers, resolved at construction."""

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None):
        self.model = model
        self.layer, self.module = resolve_layer(model, layer)

    def attribute(
        self,
        images: torch.Tensor,
        target: Target = "predicted",
        labels: torch.Tensor | None = None,
        create_graph: bool = False,
        upsample: str | None = "bilinear",
    ) -> torch.Tensor:
        """Return Grad-CAM maps ``(N, H, W)`` >= 0 at the input size (``upsample="none"``: ``(N, h, w)``).

        Arguments as in the subclass's `compute`; `upsample` is "bilinear" (default, align_corners
        False), "nearest" or "none". Maps are not normalised; see `normalise_maps`.
        """
        result = self.compute(images, target, labels, create_graph)
        return _upsample_to(result.maps, images, upsample)


class GradCAM(_LayerMethod):
    """Grad-CAM computed by hand with one forward pass and one `torch.autograd.grad` per batch.

    layer: a dotted module name (``"layer4"``, ``"layer4.1.bn2"``), a submodule, or
    None for ``model.default_layer``. The layer must run once per forward pass and
    output an ``(N, K, h, w)`` feature map.

    The method runs the model in eval mode, so each image's score depends only on its
    own activations and the gradients of the whole batch come from one backward pass
    of the summed scores. Parameters, their ``.grad``, BatchNorm statistics, the
    model's train/eval flags, ``requires_grad`` flags and the input are left unchanged.
    """

    def compute(
        self,
        images: torch.Tensor,
        target: Target = "predicted",
        labels: torch.Tensor | None = None,
        create_graph: bool = False,
    ) -> CAMResult:
        """Return the layer-resolution maps ``(N, h, w)``, the logits and the explained classes.

        images: ``(N, C, H, W)`` float. target: "predicted" (default), "true" (needs
        `labels`, ``(N,)`` int), a class index, or an ``(N,)`` int tensor.

        With `create_graph`, the maps stay differentiable with respect to the input
        (when it requires grad) and to the parameters that require grad, so a training
        loss can use them. The map is still that of the network in eval mode.
        """
        check_images(images)
        check_target(target, labels, images.shape[0])

        with torch.enable_grad(), capture_layer(self.model, self.module, detach=not create_graph) as captured:
            logits = _check_logits(self.model(images), images.shape[0], self.model)
            activations = self._single_activation(captured)
            targets = select_targets(target, logits, labels)
            score = logits.gather(1, targets[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, activations, create_graph=create_graph, allow_unused=True)
        if gradients is None:
            raise UsageError(
                f"the class scores do not depend on layer {self.layer!r}; pick a layer that feeds the classifier, "
                f"e.g. {_layer_hint(self.model)}"
            )

        with torch.set_grad_enabled(create_graph):
            weights = gradients.mean(dim=(2, 3), keepdim=True)
            maps = F.relu((weights * activations).sum(dim=1))
        return CAMResult(maps, logits.detach(), targets)


    def _single_activation(self, captured: list) -> torch.Tensor:
        if len(captured) != 1:
            raise UsageError(
                f"layer {self.layer!r} ran {len(captured)} times in one forward pass; Grad-CAM needs a layer "
                f"that runs exactly once, e.g. {_layer_hint(self.model)}"
            )
        activation = captured[0]
        if not isinstance(activation, torch.Tensor) or activation.dim() != 4:
            raise UsageError(
                f"layer {self.layer!r} outputs {_describe(activation)}; Grad-CAM needs an (N, K, h, w) "
                f"feature map, e.g. from {_layer_hint(self.model)}"
            )
        return activation


def _upsample_to(maps: torch.Tensor, images: torch.Tensor, mode: str | None) -> torch.Tensor:
    return upsample(maps, tuple(images.shape[-2:]), mode)


class CaptumGradCAM(_LayerMethod):
    """The same interface as `GradCAM`, computed by Captum's `LayerGradCam` with ReLU on.

    The model runs in eval mode and its train/eval flags are restored afterwards.
    Target "predicted" costs an extra forward pass without gradients, because
    Captum needs the classes before it runs. `create_graph` is not supported.
    """

    def compute(
        self,
        images: torch.Tensor,
        target: Target = "predicted",
        labels: torch.Tensor | None = None,
        create_graph: bool = False,
    ) -> CAMResult:
        """Return maps ``(N, h, w)``, logits and classes as `GradCAM.compute` does."""
        from captum.attr import LayerGradCam

        check_images(images)
        check_target(target, labels, images.shape[0])
        if create_graph:
            raise UsageError("create_graph=True is not supported with Captum's LayerGradCam; use GradCAM")

        with eval_state(self.model, freeze_parameters=False):
            with torch.no_grad():
                logits = _check_logits(self.model(images), images.shape[0], self.model)
            targets = select_targets(target, logits, labels)
            attributions = LayerGradCam(self.model, self.module).attribute(
                images, target=targets, relu_attributions=True
            )
        if attributions.dim() != 4:
            raise UsageError(
                f"layer {self.layer!r} outputs a map of shape {tuple(attributions.shape)}; Grad-CAM needs an "
                f"(N, K, h, w) feature map, e.g. from {_layer_hint(self.model)}"
            )
        return CAMResult(attributions[:, 0].detach(), logits, targets)


METHODS = {"hand": GradCAM, "captum": CaptumGradCAM}
