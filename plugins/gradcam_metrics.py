"""Numbers behind Grad-CAM pictures: where a map's mass lies, and whether deleting it matters.

Region shares split every image into three disjoint regions of its grayscale base
image (before any cue was drawn) and report which share of the map's mass, and
which share of the image's area, falls in each.

The deletion test is one point of the deletion curve of Petsiuk, Das and Saenko,
"RISE: Randomized Input Sampling for Explanation of Black-box Models" (BMVC 2018,
arXiv:1806.07421). It sets the most highlighted pixels to 0 and measures the drop in
the explained class's probability. Here the drop after deleting as many random
pixels is reported beside it as the baseline.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from biaskit.errors import UsageError

from .gradcam import eval_state

REGIONS = ("edge", "interior", "background")

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_magnitude(gray: torch.Tensor) -> torch.Tensor:
    """Return the Sobel gradient magnitude ``(N, H, W)`` of gray images ``(N, H, W)`` in [0, 1].

    Borders are padded by replicating the outermost pixels, so the image frame itself
    is not an edge. Values range from 0 to sqrt(20), about 4.47 (a straight 0-to-1 step gives 4).
    """
    kernels = torch.stack([_SOBEL_X, _SOBEL_X.T])[:, None].to(gray.device, gray.dtype)
    padded = F.pad(gray[:, None], (1, 1, 1, 1), mode="replicate")
    gradients = F.conv2d(padded, kernels)
    return gradients.pow(2).sum(dim=1).sqrt()


def region_masks(
    base: torch.Tensor, *, stroke_threshold: float = 0.2, edge_fraction: float = 0.3
) -> dict[str, torch.Tensor]:
    """Split each image into edge, interior and background masks, bool ``(N, H, W)`` each.

    base: ``(N, H, W)`` uint8, the grayscale images before the cue. With
    ``gray = base / 255`` and ``S`` the Sobel magnitude of ``gray``:

    - stroke = ``gray >= stroke_threshold`` (default 0.2);
    - edge = ``S > 0`` and ``S >= edge_fraction * max(S)`` over the same image
      (default 0.3), restricted to the stroke grown by one pixel (3x3 dilation),
      because a step's Sobel response covers one pixel on each side of it;
    - interior = stroke and not edge;
    - background = everything else.

    The three masks are disjoint and cover every pixel; an empty image is all background.
    """
    if not isinstance(base, torch.Tensor) or base.dim() != 3 or base.dtype != torch.uint8:
        raise UsageError(f"invalid base images {getattr(base, 'shape', base)!r}; pass (N, H, W) uint8 images")
    if not 0.0 < stroke_threshold <= 1.0 or not 0.0 < edge_fraction <= 1.0:
        raise UsageError(
            f"invalid stroke_threshold {stroke_threshold} or edge_fraction {edge_fraction}; use values in (0, 1]"
        )
    gray = base.to(torch.float32) / 255.0
    stroke = gray >= stroke_threshold
    near_stroke = F.max_pool2d(stroke[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0

    magnitude = sobel_magnitude(gray)
    peak = magnitude.amax(dim=(1, 2), keepdim=True)
    edge = (magnitude > 0) & (magnitude >= edge_fraction * peak) & near_stroke
    interior = stroke & ~edge
    return {"edge": edge, "interior": interior, "background": ~(edge | interior)}


def describe_regions(stroke_threshold: float, edge_fraction: float) -> str:
    """Return a one-line definition of the regions of `region_masks` with these thresholds."""
    return (
        f"stroke: gray >= {stroke_threshold:g}; edge: Sobel magnitude >= {edge_fraction:g} x the image's max "
        "and within one pixel of the stroke; interior: stroke but not edge; background: the rest"
    )


def region_shares(maps: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Return the mean mass share and mean area share of each region over a group of images.

    maps: ``(N, H, W)`` float >= 0 at the masks' resolution; masks: from `region_masks`.
    A map's mass share in a region is ``sum(map * mask) / sum(map)``. Images whose map
    is zero everywhere have no mass to share: they are left out of the mass shares and
    counted in ``zero_maps``. Mass shares are None when every map is zero; area shares
    average over all images. ``lift`` is mass share / area share (1 = chance).
    """
    if maps.shape != masks["edge"].shape:
        raise UsageError(
            f"map shape {tuple(maps.shape)} differs from mask shape {tuple(masks['edge'].shape)}; "
            "upsample the maps to the input size first"
        )
    maps = maps.detach().to(torch.float64)
    total = maps.sum(dim=(1, 2))
    nonzero = total > 0
    result: dict[str, Any] = {"images": int(maps.shape[0]), "zero_maps": int((~nonzero).sum()),
                              "mass": {}, "area": {}, "lift": {}}
    for region in REGIONS:
        mask = masks[region].to(maps.device)
        area = mask.to(torch.float64).mean(dim=(1, 2)).mean().item()
        result["area"][region] = area
        if nonzero.any():
            mass = (maps * mask).sum(dim=(1, 2))[nonzero] / total[nonzero]
            result["mass"][region] = mass.mean().item()
        else:
            result["mass"][region] = None
        share = result["mass"][region]
        result["lift"][region] = share / area if share is not None and area > 0 else None
    return result


@torch.no_grad()
def class_probability(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                      batch_size: int = 256) -> torch.Tensor:
    """Return the softmax probability ``(N,)`` of class ``targets[i]`` for image i, in eval mode.

    The model's train/eval flags are restored afterwards.
    """
    outputs = []
    with eval_state(model, freeze_parameters=False):
        for start in range(0, len(images), batch_size):
            logits = model(images[start : start + batch_size])
            chosen = targets[start : start + batch_size].to(logits.device)
            outputs.append(logits.softmax(dim=1).gather(1, chosen[:, None])[:, 0].cpu())
    return torch.cat(outputs)


def _top_pixels(maps: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Return a bool mask ``(N, H*W)`` of the `count` highest pixels of each map, ties broken at random."""
    flat = maps.reshape(len(maps), -1).cpu()
    shuffle = torch.rand(flat.shape, generator=generator).argsort(dim=1)
    # A stable descending sort of randomly shuffled pixels breaks ties (such as the
    # zeros left by the ReLU) at random rather than in favour of the top-left corner.
    order = flat.gather(1, shuffle).sort(dim=1, descending=True, stable=True).indices
    chosen = shuffle.gather(1, order[:, :count])
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(1, chosen, True)


def _random_pixels(shape: tuple[int, int], count: int, generator: torch.Generator) -> torch.Tensor:
    chosen = torch.rand(shape, generator=generator).argsort(dim=1)[:, :count]
    return torch.zeros(shape, dtype=torch.bool).scatter_(1, chosen, True)


def deletion_test(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    fractions: Sequence[float] = (0.05, 0.1, 0.2),
    *,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Measure how much the explained class's probability drops when the map's top pixels are set to 0.

    images: ``(N, C, H, W)`` float; maps: ``(N, H, W)`` >= 0; targets: ``(N,)`` int64.
    For each fraction f, the ``round(f * H * W)`` (at least 1) highest pixels of each
    map are set to 0 in every channel, and separately as many pixels chosen uniformly
    at random. A faithful map gives ``drop_top`` well above ``drop_random``. Returns
    mean probabilities (``base``, ``top``, ``random``) and mean drops, one per fraction.
    """
    if any(not 0.0 < fraction <= 1.0 for fraction in fractions):
        raise UsageError(f"invalid deletion fractions {list(fractions)}; use values in (0, 1]")
    if maps.shape != (images.shape[0], *images.shape[-2:]):
        raise UsageError(
            f"map shape {tuple(maps.shape)} does not match images {tuple(images.shape)}; "
            "upsample the maps to the input size first"
        )
    generator = generator or torch.Generator().manual_seed(0)
    count, _, height, width = images.shape
    base = class_probability(model, images, targets, batch_size)
    result: dict[str, Any] = {"fractions": [float(f) for f in fractions], "base": base.mean().item(),
                              "top": [], "random": [], "drop_top": [], "drop_random": []}
    for fraction in fractions:
        pixels = max(1, round(fraction * height * width))
        for name, mask in (("top", _top_pixels(maps, pixels, generator)),
                           ("random", _random_pixels((count, height * width), pixels, generator))):
            keep = (~mask).view(count, 1, height, width).to(images.device, images.dtype)
            probability = class_probability(model, images * keep, targets, batch_size)
            result[name].append(probability.mean().item())
            result[f"drop_{name}"].append((base - probability).mean().item())
    return result
