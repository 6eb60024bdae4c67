"""Shared fixtures: an isolated cache and run folder, tiny synthetic data, the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from biaskit.data import BaseData

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_folders(tmp_path, monkeypatch):
    """Point the cache and run folders into tmp_path so no test touches the user's."""
    monkeypatch.setenv("BIASKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BIASKIT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("BIASKIT_DATA_DIR", raising=False)
    monkeypatch.delenv("BIASKIT_DOWNLOAD", raising=False)
    return tmp_path


def make_tiny_base(train: int = 200, test: int = 50, size: int = 28, seed: int = 0) -> BaseData:
    """Return synthetic 10-class data: class k is a filled square whose side and place depend on k.

    Shape alone separates the classes, so a model can learn them without any cue.
    """
    generator = torch.Generator().manual_seed(seed)

    def draw(count):
        labels = torch.arange(count) % 10
        labels = labels[torch.randperm(count, generator=generator)]
        images = torch.zeros(count, size, size, dtype=torch.uint8)
        for i, label in enumerate(labels.tolist()):
            side = 6 + label % 5
            top = 2 + 4 * (label // 5) + int(torch.randint(0, 3, (1,), generator=generator))
            left = 2 + int(torch.randint(0, 3, (1,), generator=generator))
            images[i, top : top + side, left : left + side] = 200 + 5 * label
        return images, labels

    train_images, train_labels = draw(train)
    test_images, test_labels = draw(test)
    return BaseData("tiny", train_images, train_labels, test_images, test_labels,
                    [f"class{k}" for k in range(10)], source="synthetic")


@pytest.fixture(scope="module")
def single_thread():
    """Run torch on one thread: on a busy 2-core CPU, two OpenMP threads wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_base() -> BaseData:
    return make_tiny_base()


@pytest.fixture
def real_data_dir() -> Path:
    """The folder with the real IDX files ($BIASKIT_TEST_DATA or ../shared/data); skip when absent."""
    folder = Path(os.environ.get("BIASKIT_TEST_DATA", SHARED_DATA))
    if not (folder / "fashion-mnist").is_dir():
        pytest.skip(f"real data not found in {folder}; set BIASKIT_TEST_DATA")
    return folder
