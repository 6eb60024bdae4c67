"""Models: a CIFAR-style ResNet-18 built with timm, and a small three-layer CNN."""

from __future__ import annotations

import timm
import torch
from torch import nn

from biaskit.errors import UsageError
from biaskit.hookspecs import hookimpl


def resnet18(num_classes: int = 10, in_chans: int = 3, width: int = 64, global_pool: str = "avg") -> nn.Module:
    """ResNet-18 with random weights, a 3x3 stride-1 stem and no max-pool, for 28x28 inputs.

    `width` is the channel count of the stem and layer1; layers 2 to 4 double it
    each time (64 gives the standard 64-128-256-512). `global_pool` is timm's pooling
    before the classifier ("avg" as in the standard ResNet, or "max"). Probes default
    to ``layer4``.
    """
    if width < 1:
        raise UsageError(f"invalid width {width} for model 'resnet18'; use a positive channel count")
    channels = (width, 2 * width, 4 * width, 8 * width)
    model = timm.create_model(
        "resnet18", pretrained=False, num_classes=num_classes, in_chans=in_chans, channels=channels,
        global_pool=global_pool,
    )
    model.conv1 = nn.Conv2d(in_chans, width, kernel_size=3, stride=1, padding=1, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    model.maxpool = nn.Identity()
    if width != 64:
        # timm sizes layer1's input for a 64-channel stem; with another stem width the
        # first block would need a 1x1 projection that the standard ResNet-18 lacks.
        first = model.layer1[0]
        first.conv1 = nn.Conv2d(width, width, kernel_size=3, stride=1, padding=1, bias=False)
        first.downsample = None
    model.default_layer = "layer4"
    return model


class SmallCNN(nn.Module):
    """Three 3x3 convolutions (with ReLU and 2x2 max-pooling after the first two) and a linear head."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 4 * width, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.head = nn.Linear(4 * width, num_classes)
        self.default_layer = "conv3"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.conv3(x))
        return self.head(x.mean(dim=(2, 3)))


def small_cnn(num_classes: int = 10, in_chans: int = 3, width: int = 32) -> nn.Module:
    """Small three-layer CNN (conv-pool, conv-pool, conv, global average, linear); probes default to conv3."""
    if width < 1:
        raise UsageError(f"invalid width {width} for model 'small-cnn'; use a positive channel count")
    return SmallCNN(num_classes, in_chans, width)


@hookimpl
def biaskit_register_models(registry):
    registry.add("resnet18", resnet18)
    registry.add("small-cnn", small_cnn)
