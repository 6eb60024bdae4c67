"""Attacks shipped with biaskit: targeted PGD through torchattacks."""

from __future__ import annotations

from typing import Any

import torch

from biaskit.errors import UsageError
from biaskit.hookspecs import hookimpl


def pick_targets(labels: torch.Tensor, num_classes: int, target: str, generator: torch.Generator) -> torch.Tensor:
    """Return a target class per image: 'random' (any class but the label), 'next' (label + 1), or a class index."""
    if target == "random":
        offsets = torch.randint(1, num_classes, labels.shape, generator=generator)
        return (labels + offsets) % num_classes
    if target == "next":
        return (labels + 1) % num_classes
    if target.isdigit() and int(target) < num_classes:
        return torch.full_like(labels, int(target))
    raise UsageError(
        f"invalid target {target!r}; use 'random', 'next' or a class index from 0 to {num_classes - 1}"
    )


class TorchattacksPGD:
    """Targeted L-infinity PGD from torchattacks: ``x <- clip(x - alpha * sign(grad CE(f(x), t)))``.

    Runs a fixed number of steps (torchattacks does not stop early) from the clean
    image (`random_start` off by default). An attack succeeds when the model predicts
    the target; it succeeds with confidence when the target's softmax probability
    also reaches `confidence`. Images are ``(N, C, H, W)`` floats in [0, 1].
    The model's train/eval mode is restored even when the attack raises.
    """

    def __init__(self, eps: float = 0.05, alpha: float = 0.005, steps: int = 40, images: int = 200,
                 target: str = "random", confidence: float = 0.9, random_start: bool = False):
        if not 0 < eps <= 1:
            raise UsageError(f"invalid eps {eps}; use a value in (0, 1]")
        if alpha <= 0 or steps < 1 or images < 1:
            raise UsageError(f"alpha, steps and images must be positive, got {alpha}, {steps}, {images}")
        if not 0 < confidence < 1:
            raise UsageError(f"invalid confidence {confidence}; use a value in (0, 1)")
        self.eps, self.alpha, self.steps, self.images = eps, alpha, steps, images
        self.target, self.confidence, self.random_start = target, confidence, random_start

    def attack(self, model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return adversarial images pushed toward `targets` within the eps-ball."""
        import torchattacks

        was_training = model.training
        try:
            attack = torchattacks.PGD(model, eps=self.eps, alpha=self.alpha, steps=self.steps,
                                      random_start=self.random_start)
            attack.set_mode_targeted_by_label(quiet=True)
            return attack(images, targets)
        finally:
            model.train(was_training)

    def run(self, context) -> dict[str, Any]:
        model, data = context.model.model, context.data
        generator = torch.Generator().manual_seed(context.seed)
        count = min(self.images, len(data.test))
        index = torch.randperm(len(data.test), generator=generator)[:count]
        images = data.test.images[index].to(context.device)
        labels = data.test.labels[index].to(context.device)
        targets = pick_targets(labels.cpu(), data.num_classes, self.target, generator).to(context.device)

        adversarial = self.attack(model, images, targets)
        with torch.no_grad():
            clean_pred = model(images).argmax(1)
            probabilities = model(adversarial).softmax(1)
        target_probability = probabilities.gather(1, targets[:, None]).squeeze(1)
        hit = probabilities.argmax(1) == targets
        # A random target can be the class the model already predicts, so report that baseline.
        already = clean_pred == targets
        confident = hit & (target_probability >= self.confidence)

        results = {
            "attack": "pgd-torchattacks",
            "params": {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "target": self.target,
                       "confidence": self.confidence, "random_start": self.random_start},
            "images": count,
            "clean_accuracy": (clean_pred == labels).float().mean().item(),
            "target_before_attack_rate": already.float().mean().item(),
            "targeted_success_rate": hit.float().mean().item(),
            "confident_success_rate": confident.float().mean().item(),
            "mean_target_probability": target_probability.mean().item(),
            "max_linf": (adversarial - images).abs().max().item(),
        }
        results["summary"] = (
            f"pgd-torchattacks on {context.model.label}: targeted success "
            f"{100 * results['targeted_success_rate']:.1f}% (with p >= {self.confidence}: "
            f"{100 * results['confident_success_rate']:.1f}%) on {count} test images, eps {self.eps}; "
            f"before the attack: {100 * results['clean_accuracy']:.1f}% correct, "
            f"{100 * results['target_before_attack_rate']:.1f}% already on the target"
        )
        context.save_text("summary.txt", results["summary"] + "\n")
        return results


def pgd_torchattacks(eps: float = 0.05, alpha: float = 0.005, steps: int = 40, images: int = 200,
                     target: str = "random", confidence: float = 0.9,
                     random_start: bool = False) -> TorchattacksPGD:
    """Targeted PGD (L-inf) from torchattacks; reports the targeted success rate."""
    return TorchattacksPGD(eps, alpha, steps, images, target, confidence, random_start)


@hookimpl
def biaskit_register_attacks(registry):
    registry.add("pgd-torchattacks", pgd_torchattacks)
