"""Time biaskit's whole-tensor data path against a per-item torch Dataset and DataLoader.

Both designs produce the same stroke-coloured Fashion-MNIST training images:

- biaskit: `make_biased_data` colours every split (48,000 train, 12,000 validation
  and 10,000 test images) in one vectorised pass per split, then one epoch slices
  batches of 128 out of the train tensor by a random permutation, as
  `biaskit.training.train` does;
- per item: a `torch.utils.data.Dataset` stores the uint8 train images and colours
  one image in each `__getitem__`, and a `DataLoader` (batch 128, shuffle,
  num_workers=0) collates one epoch.

The per-item design reuses biaskit's split and cue values, so both epochs see the same
images and the checksums printed at the end must agree. Loading the IDX files is
timed once and is not part of either design's time.

Run by hand, not by pytest::

    python bench/bench_data.py --data-dir DIR   # DIR contains fashion-mnist/ or the four IDX files
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, Dataset

from biaskit.api import load_base
from biaskit.data import make_biased_data
from biaskit_plugins.biases import ColourBias

BATCH_SIZE = 128


class PerItemColoured(Dataset):
    """Colours one grayscale image per access: ``(H, W)`` uint8 to ``(3, H, W)`` float in [0, 1]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, cue_values: torch.Tensor,
                 colours: torch.Tensor):
        self.images, self.labels, self.cue_values, self.colours = images, labels, cue_values, colours

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        gray = self.images[index].to(torch.float32).div(255.0).unsqueeze(0)
        colour = self.colours[self.cue_values[index]].view(3, 1, 1)
        return gray * colour, self.labels[index]


def whole_tensor_epoch(base, bias, seed: int) -> tuple[float, float, float, object]:
    """Build the coloured data and run one sliced epoch; return (build s, epoch s, checksum, data)."""
    started = time.perf_counter()
    data = make_biased_data(base, bias, seed=seed)
    built = time.perf_counter()
    split = data.train
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    checksum = 0.0
    for start in range(0, len(order), BATCH_SIZE):
        index = order[start : start + BATCH_SIZE]
        images, labels = split.images[index], split.labels[index]
        checksum += float(images.sum()) + float(labels.sum())
    return built - started, time.perf_counter() - built, checksum, data


def per_item_epoch(data, bias, seed: int) -> tuple[float, float]:
    """Run one DataLoader epoch over a per-item colouring Dataset; return (seconds, checksum)."""
    split = data.train
    dataset = PerItemColoured(split.base, split.labels, split.cue_values, bias.colours)
    started = time.perf_counter()
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(seed))
    checksum = 0.0
    for images, labels in loader:
        checksum += float(images.sum()) + float(labels.sum())
    return time.perf_counter() - started, checksum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder with the Fashion-MNIST IDX files; default: biaskit's usual lookup")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each design (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    base = load_base("fashion-mnist", data_dir=args.data_dir)
    load_seconds = time.perf_counter() - started
    bias = ColourBias()
    print(f"data: {base.source}, {len(base.train_labels)} train and {len(base.test_labels)} test images")
    print(f"IDX load (shared by both designs, not in the times below): {load_seconds:.2f} s")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH_SIZE}")

    build_times, epoch_times, item_times = [], [], []
    for repeat in range(args.repeats):
        build_seconds, epoch_seconds, whole_sum, data = whole_tensor_epoch(base, bias, seed=repeat)
        build_times.append(build_seconds)
        epoch_times.append(epoch_seconds)
        seconds, item_sum = per_item_epoch(data, bias, seed=repeat)
        item_times.append(seconds)
        if abs(whole_sum - item_sum) > 1e-6 * abs(whole_sum):
            raise SystemExit(f"checksums differ: {whole_sum} vs {item_sum}; the designs saw different images")

    totals = [build + epoch for build, epoch in zip(build_times, epoch_times)]
    build, epoch = statistics.median(build_times), statistics.median(epoch_times)
    whole, item = statistics.median(totals), statistics.median(item_times)
    print(f"biaskit colour 70,000 images:      median {build:.2f} s  ({format_runs(build_times)})")
    print(f"biaskit sliced epoch:              median {epoch:.2f} s  ({format_runs(epoch_times)})")
    print(f"biaskit colour + one epoch:        median {whole:.2f} s  ({format_runs(totals)})")
    print(f"per-item Dataset + DataLoader:     median {item:.2f} s  ({format_runs(item_times)})")
    print(f"ratio per-item / biaskit, first epoch (colouring included): {item / whole:.1f}x")
    print(f"ratio per-item / biaskit, each later epoch (colouring done): {item / epoch:.1f}x")


def format_runs(times: list[float]) -> str:
    return "runs " + ", ".join(f"{seconds:.2f}" for seconds in times)

if __name__ == "__main__":
    main()
