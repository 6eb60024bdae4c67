"""Probes shipped with biaskit: Grad-CAM, by hand or through Captum, beside a comparison model."""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from biaskit.data import to_unit_float
from biaskit.errors import UsageError
from biaskit.hookspecs import hookimpl

from .gradcam import METHODS, normalise_maps, upsample
from .gradcam_metrics import REGIONS, deletion_test, describe_regions, region_masks, region_shares

GROUPS = ("aligned", "conflicting")
ROLES = ("studied", "compare")


class GradCAMProbe:
    """Grad-CAM maps of the studied model and a comparison model on aligned and conflicting images.

    The images are `images` random test images. "Conflicting" is the test split as
    built (the cue of another class); "aligned" is the same base image redrawn with
    its own class's cue. The comparison model gets the same base images drawn with its
    own bias. For each model and group, the probe reports the accuracy, the share of
    map mass and of area on stroke edges, stroke interior and background (see
    `gradcam_metrics.region_masks`), and the deletion test. It writes
    ``gradcam-grid.png`` (per class, `per_class` images, aligned and conflicting) and
    ``summary.txt``.
    """

    def __init__(self, method: str, layer: str, target: str, images: int, compare: str, per_class: int,
                 compare_layer: str, batch_size: int, deletion: Sequence[float], stroke_threshold: float,
                 edge_fraction: float):
        if isinstance(target, int) and not isinstance(target, bool):
            target = str(target)
        if method not in METHODS:
            raise UsageError(f"invalid Grad-CAM method {method!r}; choose one of: {', '.join(METHODS)}")
        if not isinstance(target, str) or (target not in ("predicted", "true") and not target.isdigit()):
            raise UsageError(f"invalid target {target!r}; use 'predicted', 'true' or a class index")
        if images < 1 or per_class < 1 or batch_size < 1:
            raise UsageError(
                f"images, per_class and batch_size must be positive, got {images}, {per_class}, {batch_size}"
            )
        if not deletion or any(not 0.0 < fraction <= 1.0 for fraction in deletion):
            raise UsageError(f"invalid deletion fractions {list(deletion)}; give values in (0, 1], e.g. 0.05,0.1,0.2")
        if not 0.0 < stroke_threshold <= 1.0 or not 0.0 < edge_fraction <= 1.0:
            raise UsageError(
                f"invalid stroke_threshold {stroke_threshold} or edge_fraction {edge_fraction}; use values in (0, 1]"
            )
        self.method, self.layer, self.target = method, layer, target
        self.images, self.compare, self.per_class = images, compare, per_class
        self.compare_layer, self.batch_size = compare_layer, batch_size
        self.deletion = [float(fraction) for fraction in deletion]
        self.stroke_threshold, self.edge_fraction = stroke_threshold, edge_fraction

    def run(self, context) -> dict[str, Any]:
        test = context.data.test
        index, grid_index = self._choose_images(test.labels, context.data.num_classes, context.seed)
        base, labels = test.base[index], test.labels[index]
        masks = region_masks(base, stroke_threshold=self.stroke_threshold, edge_fraction=self.edge_fraction)

        models = {"studied": (context.model, context.data)}
        compared = self._load_compare(context)
        if compared is not None:
            models["compare"] = compared

        generator = torch.Generator().manual_seed(context.seed)
        steps = len(models) * len(GROUPS) * (math.ceil(len(index) / self.batch_size) + 1)
        results: dict[str, Any] = {"probe": f"gradcam ({self.method})", "params": self._params(),
                                   "images": len(index), "models": {}}
        with tqdm(total=steps, desc="gradcam", unit="step", disable=None if context.progress else True) as progress:
            for role, (trained, data) in models.items():
                groups = self._groups(role, data, test, index)
                results["models"][role] = self._measure(
                    trained, groups, labels, masks, context.device, generator, progress, role
                )
        results["regions"] = {"stroke_threshold": self.stroke_threshold, "edge_fraction": self.edge_fraction,
                              "definition": describe_regions(self.stroke_threshold, self.edge_fraction)}

        grid = self._grid_panels(context, models, grid_index)
        context.save_figure(grid_figure(grid, context.data.class_names), "gradcam-grid.png")
        results["summary"] = summary_text(results)
        context.save_text("summary.txt", results["summary"] + "\n")
        return results

    def _params(self) -> dict[str, Any]:
        return {"layer": self.layer, "target": self.target, "images": self.images, "compare": self.compare,
                "per_class": self.per_class, "compare_layer": self.compare_layer, "batch_size": self.batch_size,
                "deletion": self.deletion, "stroke_threshold": self.stroke_threshold,
                "edge_fraction": self.edge_fraction}

    def _choose_images(self, labels: torch.Tensor, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the measured test indices and the grid's indices (`per_class` per class, by class)."""
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        grid = [order[labels[order] == label][: self.per_class] for label in range(num_classes)]
        return order[: self.images], torch.cat(grid)

    @staticmethod
    def _groups(role: str, data, test, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return aligned and conflicting renderings ``(N, C, H, W)`` of the studied test images `index`.

        test: the studied model's test split; data: the dataset of the model that will
        see the images, whose bias draws the cue.
        """
        if role == "studied":
            aligned = data.bias.render(to_unit_float(test.base[index]), test.labels[index] % data.bias.num_values)
            return {"aligned": aligned, "conflicting": test.images[index]}
        return _render_groups(data, test.base[index], test.labels[index])

    def _load_compare(self, context):
        if not self.compare:
            return None
        if context.load_model is None:
            raise UsageError(
                f"cannot load comparison model {self.compare!r}: this run context has no load_model; pass compare=''"
            )
        trained, data = context.load_model(self.compare)
        if data.config.get("dataset") != context.data.config.get("dataset"):
            warnings.warn(
                f"comparison model {self.compare!r} was trained on {data.config.get('dataset')!r}, "
                f"not {context.data.config.get('dataset')!r}; its maps are on images it never saw",
                RuntimeWarning, stacklevel=2,
            )
        return trained, data

    def _explainer(self, trained, role: str):
        layer = self.layer if role == "studied" else (self.compare_layer or self.layer)
        return METHODS[self.method](trained.model, layer or None)

    def _target(self):
        return int(self.target) if self.target.isdigit() else self.target

    def _maps(self, explainer, images, labels, device, progress=None) -> tuple[torch.Tensor, ...]:
        """Return maps ``(N, H, W)`` at the input size, targets and predictions ``(N,)``, and the layer's map size.

        The tensors are on the CPU.
        """
        maps, targets, predictions = [], [], []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size].to(device)
            batch_labels = labels[start : start + self.batch_size].to(device)
            result = explainer.compute(batch, self._target(), batch_labels)
            layer_size = list(result.maps.shape[-2:])
            maps.append(upsample(result.maps.detach(), tuple(batch.shape[-2:])).cpu())
            targets.append(result.targets.cpu())
            predictions.append(result.logits.argmax(dim=1).cpu())
            if progress is not None:
                progress.update()
        return torch.cat(maps), torch.cat(targets), torch.cat(predictions), layer_size

    def _measure(self, trained, groups, labels, masks, device, generator, progress, role) -> dict[str, Any]:
        explainer = self._explainer(trained, role)
        measured: dict[str, Any] = {"label": trained.label, "layer": explainer.layer}
        for group in GROUPS:
            images = groups[group]
            maps, targets, predictions, layer_size = self._maps(explainer, images, labels, device, progress)
            shares = region_shares(maps, masks)
            deletion = deletion_test(trained.model, images.to(device), maps.to(device), targets, self.deletion,
                                     generator=generator, batch_size=self.batch_size)
            progress.update()
            measured["map_size"] = layer_size
            measured[group] = {"accuracy": (predictions == labels).float().mean().item(), **shares,
                               "deletion": deletion}
        return measured

    def _grid_panels(self, context, models, grid_index) -> list[dict[str, Any]]:
        """Return one row per grid image and group: the label and, per model, image, map and prediction."""
        labels = context.data.test.labels[grid_index]
        rows = [{"label": int(label), "group": group, "panels": {}} for label in labels for group in GROUPS]
        for role, (trained, data) in models.items():
            explainer = self._explainer(trained, role)
            rendered = self._groups(role, data, context.data.test, grid_index)
            for offset, group in enumerate(GROUPS):
                images = rendered[group]
                maps, targets, predictions, _ = self._maps(explainer, images, labels, context.device)
                for position in range(len(labels)):
                    rows[2 * position + offset]["panels"][role] = {
                        "name": trained.label, "image": images[position].cpu(),
                        "map": normalise_maps(maps[position]), "target": int(targets[position]),
                        "prediction": int(predictions[position]),
                    }
        return rows


def _render_groups(data, base: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Draw `base` ``(N, H, W)`` uint8 with `data`'s bias: own class's cue, and the test split's cue."""
    values = labels % data.bias.num_values
    offset = int(data.config.get("test_offset", 0))
    gray = to_unit_float(base)
    return {"aligned": data.bias.render(gray, values),
            "conflicting": data.bias.render(gray, (labels + offset) % data.bias.num_values)}


def _rgb(image: torch.Tensor) -> torch.Tensor:
    """Return an ``(H, W, 3)`` view of a ``(C, H, W)`` image in [0, 1]: RGB when C is 3, else channel 0 as gray."""
    if image.shape[0] != 3:
        image = image[:1].expand(3, -1, -1)
    return image.permute(1, 2, 0).clamp(0, 1)


def grid_figure(rows: list[dict[str, Any]], class_names: list[str]):
    """Return a figure with one row per image and group; per model: input, heatmap, overlay (jet colormap).

    rows: from `GradCAMProbe._grid_panels`; each panel's map is ``(H, W)`` in [0, 1].
    The tiles are pasted into one image drawn by a single `imshow`, because a grid of
    one axes per tile (120 for 10 classes) takes seconds to lay out and save.
    """
    import biaskit.figures  # noqa: F401  (selects matplotlib's Agg backend before pyplot is imported)
    import matplotlib.pyplot as plt
    from matplotlib import colormaps

    jet = colormaps["jet"]
    roles = [role for role in ROLES if rows and role in rows[0]["panels"]]
    height, width = rows[0]["panels"][roles[0]]["map"].shape
    gap, row_gap, model_gap = max(1, width // 8), height // 2, width // 2
    block = 3 * width + 2 * gap + model_gap
    canvas = torch.ones(len(rows) * (height + row_gap) + row_gap, len(roles) * block, 3)
    figure, axes = plt.subplots(figsize=(canvas.shape[1] / 26, canvas.shape[0] / 26))

    for row_number, row in enumerate(rows):
        top = row_gap + row_number * (height + row_gap)
        for role_number, role in enumerate(roles):
            panel = row["panels"][role]
            image = _rgb(panel["image"])
            heat = torch.from_numpy(jet(panel["map"].numpy())[..., :3]).float()
            left = role_number * block
            for column, tile in enumerate((image, heat, 0.5 * image + 0.5 * heat)):
                start = left + column * (width + gap)
                canvas[top : top + height, start : start + width] = tile
            axes.text(left, top + height + 1, f"pred {panel['prediction']}, map of {panel['target']}",
                      fontsize=6, va="top")
            if row_number == 0:
                titles = ("input", f"{panel['name']}\nGrad-CAM", "overlay")
                for column, title in enumerate(titles):
                    axes.text(left + column * (width + gap) + width / 2, top - 1, title, fontsize=7,
                              ha="center", va="bottom")
        axes.text(-1, top + height / 2, f"{class_names[row['label']]}\n{row['group']}", fontsize=7,
                  ha="right", va="center")

    axes.imshow(canvas.numpy(), interpolation="nearest")
    axes.set_axis_off()
    return figure


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def summary_text(results: dict[str, Any]) -> str:
    """Return a few lines stating, per model and group, accuracy, mass shares against area shares, and deletion."""
    fractions = results["params"]["deletion"]
    middle = len(fractions) // 2
    lines = [
        f"{results['probe']} on {results['images']} test images, target {results['params']['target']}. "
        "Map mass share (area share) on stroke edge / stroke interior / background:"
    ]
    for measured in results["models"].values():
        size = "x".join(map(str, measured["map_size"]))
        for group in GROUPS:
            values = measured[group]
            regions = ", ".join(
                f"{region} {_percent(values['mass'][region])} ({_percent(values['area'][region])})"
                for region in REGIONS
            )
            zero = f", {values['zero_maps']} all-zero maps left out" if values["zero_maps"] else ""
            lines.append(
                f"  {measured['label']} at {measured['layer']} ({size}), {group}: accuracy "
                f"{_percent(values['accuracy'])}; {regions}{zero}"
            )
    lines.append(
        f"Deletion test, probability drop of the explained class after zeroing the top {_percent(fractions[middle])} "
        "of map pixels vs as many random pixels:"
    )
    for measured in results["models"].values():
        parts = [
            f"{group} {measured[group]['deletion']['drop_top'][middle]:.3f} vs "
            f"{measured[group]['deletion']['drop_random'][middle]:.3f}"
            for group in GROUPS
        ]
        lines.append(f"  {measured['label']}: " + ", ".join(parts))
    return "\n".join(lines)


def _probe(method: str, layer: str, target: str, images: int, compare: str, per_class: int, compare_layer: str,
           batch_size: int, deletion: tuple, stroke_threshold: float, edge_fraction: float) -> GradCAMProbe:
    return GradCAMProbe(method, layer, target, images, compare, per_class, compare_layer, batch_size,
                        deletion, stroke_threshold, edge_fraction)


def gradcam(layer: str = "", target: str = "predicted", images: int = 500, compare: str = "control",
            per_class: int = 1, compare_layer: str = "", batch_size: int = 128,
            deletion: tuple = (0.05, 0.1, 0.2), stroke_threshold: float = 0.2,
            edge_fraction: float = 0.3) -> GradCAMProbe:
    """Show where the model and a comparison model look (hand-written Grad-CAM): grid, region shares, deletion test.

    - layer: dotted module name, empty for the model's default layer.
    - target: "predicted", "true" or a class index.
    - images: how many random test images are measured.
    - compare: recipe name or checkpoint path of the comparison model, empty to skip.
    - per_class: grid images per class, each shown aligned and conflicting.
    - compare_layer: the comparison model's layer, empty for `layer` or its default.
    - batch_size: images per forward pass.
    - deletion: fractions of pixels zeroed in the deletion test.
    - stroke_threshold, edge_fraction: region thresholds, see `gradcam_metrics.region_masks`.
    """
    return _probe("hand", layer, target, images, compare, per_class, compare_layer, batch_size,
                  deletion, stroke_threshold, edge_fraction)


def gradcam_captum(layer: str = "", target: str = "predicted", images: int = 500, compare: str = "control",
                   per_class: int = 1, compare_layer: str = "", batch_size: int = 128,
                   deletion: tuple = (0.05, 0.1, 0.2), stroke_threshold: float = 0.2,
                   edge_fraction: float = 0.3) -> GradCAMProbe:
    """Run the 'gradcam' probe with Captum's LayerGradCam in place of the hand-written method; same parameters."""
    return _probe("captum", layer, target, images, compare, per_class, compare_layer, batch_size,
                  deletion, stroke_threshold, edge_fraction)


@hookimpl
def biaskit_register_probes(registry):
    registry.add("gradcam", gradcam)
    registry.add("gradcam-captum", gradcam_captum)
