"""Time the hand-written Grad-CAM against Captum's LayerGradCam on the same batch.

Run by hand: ``python bench/bench_gradcam.py [--repeats 15] [--images 512] [--device cpu]``.

Both compute Grad-CAM at ``layer4`` of a ResNet-18 (width 16, random weights, eval
mode) for 512 random 28x28 RGB images, explain the predicted class and upsample
bilinearly to 28x28. `LayerGradCam` needs the classes as input, so Captum gets the
predicted classes computed beforehand, outside its timing. The hand-written version
finds them inside its own forward pass. The Captum time that includes that extra
forward pass is printed too. Each repeat runs both, alternating which goes first;
the script prints the median of each, their ratio and the largest difference between
the two maps.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from captum.attr import LayerAttribution, LayerGradCam

from biaskit.plugins import registries
from biaskit_plugins.gradcam import GradCAM


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="batch size (default 512)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per method (default 15)")
    parser.add_argument("--width", type=int, default=16, help="ResNet-18 stem width (default 16)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    return parser.parse_args()


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device: torch.device) -> tuple[float, torch.Tensor]:
    synchronise(device)
    started = time.perf_counter()
    result = function()
    synchronise(device)
    return time.perf_counter() - started, result


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = registries().models.create("resnet18", width=args.width).to(device).eval()
    images = torch.rand(args.images, 3, 28, 28, generator=torch.Generator().manual_seed(0)).to(device)
    size = tuple(images.shape[-2:])
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)

    hand = GradCAM(model, "layer4")
    captum = LayerGradCam(model, model.layer4)

    def run_hand():
        return hand.attribute(images, "predicted")

    def run_captum():
        maps = captum.attribute(images, target=predicted, relu_attributions=True)
        return LayerAttribution.interpolate(maps, size, interpolate_mode="bilinear")[:, 0].detach()

    def run_captum_with_prediction():
        with torch.no_grad():
            targets = model(images).argmax(dim=1)
        maps = captum.attribute(images, target=targets, relu_attributions=True)
        return LayerAttribution.interpolate(maps, size, interpolate_mode="bilinear")[:, 0].detach()

    methods = {"hand": run_hand, "captum": run_captum, "captum+predict": run_captum_with_prediction}
    for function in methods.values():  # warm-up: allocator, kernels, lazy imports
        function()
    times = {name: [] for name in methods}
    outputs = {}
    for repeat in range(args.repeats):
        order = list(methods) if repeat % 2 == 0 else list(reversed(methods))
        for name in order:
            seconds, outputs[name] = timed(methods[name], device)
            times[name].append(seconds)

    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, device {device}")
    print(f"batch: {args.images} images 3x28x28, resnet18 width {args.width}, layer4, predicted class, "
          f"bilinear upsampling; median of {args.repeats} repeats")
    for name, median in medians.items():
        spread = f"min {min(times[name]) * 1000:.1f} ms, max {max(times[name]) * 1000:.1f} ms"
        print(f"{name:>15}: {median * 1000:8.1f} ms  ({spread})")
    print(f"ratio hand/captum: {medians['hand'] / medians['captum']:.3f}; "
          f"hand/(captum+predict): {medians['hand'] / medians['captum+predict']:.3f}")
    print(f"max abs difference of the maps: {(outputs['hand'] - outputs['captum']).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
