"""Cues drawn onto grayscale images: stroke or background colour, a coloured patch, plain gray."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from biaskit.data import Bias
from biaskit.errors import UsageError
from biaskit.hookspecs import hookimpl

# Class k's colour is entry k, as RGB in [0, 1].
DEFAULT_PALETTE = (
    ("red", (1.0, 0.0, 0.0)),
    ("green", (0.0, 1.0, 0.0)),
    ("blue", (0.0, 0.0, 1.0)),
    ("yellow", (1.0, 1.0, 0.0)),
    ("cyan", (0.0, 1.0, 1.0)),
    ("magenta", (1.0, 0.0, 1.0)),
    ("orange", (1.0, 0.5, 0.0)),
    ("dark-green", (0.0, 0.5, 0.0)),
    ("purple", (0.5, 0.0, 1.0)),
    ("teal", (0.0, 0.5, 0.5)),
)


def parse_palette(palette: str | Sequence[Sequence[float]] | None) -> tuple[list[str], torch.Tensor]:
    """Return colour names and an ``(K, 3)`` tensor from a palette given as text or triples.

    Text form: ``"1,0,0;0,1,0;..."``, one RGB triple in [0, 1] per cue value.
    """
    if palette is None or palette == "default":
        names = [name for name, _ in DEFAULT_PALETTE]
        return names, torch.tensor([rgb for _, rgb in DEFAULT_PALETTE])
    if isinstance(palette, str):
        try:
            triples = [[float(part) for part in item.split(",")] for item in palette.split(";") if item]
        except ValueError:
            raise UsageError(
                f"invalid palette {palette!r}; write RGB triples in [0, 1] as '1,0,0;0,1,0;...'"
            ) from None
    else:
        triples = [list(map(float, item)) for item in palette]
    colours = torch.tensor(triples) if triples and all(len(t) == 3 for t in triples) else None
    # The range test is written so that NaN fails it too.
    if colours is None or not ((colours >= 0) & (colours <= 1)).all():
        raise UsageError(
            f"invalid palette {palette!r}; give at least one RGB triple, each value in [0, 1]"
        )
    names = ["rgb(" + ",".join(f"{value:g}" for value in row.tolist()) + ")" for row in colours]
    return names, colours


class ColourBias(Bias):
    """Tint the stroke (or the background) of a grayscale image with the cue's colour.

    With ``target="stroke"`` a pixel of gray level g becomes ``g * colour``, so the
    background stays exactly 0 and only the stroke carries colour. With
    ``target="background"`` it becomes ``g + (1 - g) * colour``: the stroke stays
    white and the background takes the colour.
    """

    name = "colour"

    def __init__(self, palette=None, target: str = "stroke"):
        if target not in ("stroke", "background"):
            raise UsageError(f"invalid target {target!r} for bias 'colour'; choose stroke or background")
        self.value_names, self.colours = parse_palette(palette)
        self.target = target

    def render(self, images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        colours = self.colours.to(images.device, images.dtype)[values].view(-1, 3, 1, 1)
        if self.target == "stroke":
            return images * colours
        return images + (1.0 - images) * colours

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "palette": self.colours.tolist(), "target": self.target}


class PatchBias(Bias):
    """Keep the image gray (three equal channels) and paint a square of the cue's colour in a corner."""

    name = "patch"

    def __init__(self, palette=None, size: int = 4, corner: str = "top-left"):
        corners = ("top-left", "top-right", "bottom-left", "bottom-right")
        if corner not in corners:
            raise UsageError(f"invalid corner {corner!r} for bias 'patch'; choose one of: {', '.join(corners)}")
        if size < 1:
            raise UsageError(f"invalid size {size} for bias 'patch'; use a positive number of pixels")
        self.value_names, self.colours = parse_palette(palette)
        self.size, self.corner = size, corner

    def render(self, images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        out = images.expand(-1, 3, -1, -1).clone()
        height, width = out.shape[-2:]
        top = 0 if self.corner.startswith("top") else height - self.size
        left = 0 if self.corner.endswith("left") else width - self.size
        colours = self.colours.to(images.device, images.dtype)[values].view(-1, 3, 1, 1)
        out[:, :, top : top + self.size, left : left + self.size] = colours
        return out

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "palette": self.colours.tolist(), "size": self.size, "corner": self.corner}


class GrayscaleBias(Bias):
    """No cue: the gray image repeated on three channels, for control models."""

    name = "grayscale"
    value_names = ["gray"]

    def render(self, images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return images.expand(-1, 3, -1, -1).clone()


def colour(palette: str | None = None, target: str = "stroke") -> ColourBias:
    """Stroke colour per class (or background colour with target=background)."""
    return ColourBias(palette, target)


def patch(palette: str | None = None, size: int = 4, corner: str = "top-left") -> PatchBias:
    """Paint a square of the class colour in one corner of a gray image."""
    return PatchBias(palette, size, corner)


def grayscale() -> GrayscaleBias:
    """No cue: gray images on three channels (control)."""
    return GrayscaleBias()


@hookimpl
def biaskit_register_biases(registry):
    registry.add("colour", colour)
    registry.add("patch", patch)
    registry.add("grayscale", grayscale)
