"""Tests for IDX reading, data source lookup, downloads (faked) and `make_biased_data`."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets

import biaskit_plugins.datasets as datasets
from biaskit.data import BaseData, Bias, make_biased_data
from biaskit.errors import BiaskitError, UsageError
from biaskit.plugins import registries
from biaskit_plugins.biases import ColourBias, GrayscaleBias, PatchBias, parse_palette
from conftest import make_tiny_base


pytestmark = pytest.mark.usefixtures("single_thread")


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format: magic (0, 0, 0x08, ndim), big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim])
    dims = b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    return header + dims + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = idx_bytes(array)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_dataset(folder: Path, train: int = 12, test: int = 4, compress: bool = False) -> Path:
    """Write the four IDX files of a small 10-class set; tests tell sets apart by the `train` count."""
    rng = np.random.default_rng(train)
    arrays = {
        "train_images": rng.integers(0, 256, (train, 5, 5)),
        "train_labels": np.arange(train) % 10,
        "test_images": rng.integers(0, 256, (test, 5, 5)),
        "test_labels": np.arange(test) % 10,
    }
    for key, stem in datasets.FILES.items():
        write_idx(folder / stem, arrays[key], compress)
    return folder


@pytest.fixture
def no_system_folder(tmp_path, monkeypatch):
    """Point the Debian Fashion-MNIST folder at an empty path, so this machine's copy is not found."""
    missing = tmp_path / "no-system-folder"
    monkeypatch.setattr(datasets, "DEBIAN_FASHION", missing)
    return missing


@pytest.fixture
def cache(isolated_folders) -> Path:
    return isolated_folders / "cache"


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


# IDX reader


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "images-idx3-ubyte", array, compress)
    read = datasets.read_idx(path)
    assert read.shape == (2, 3, 4)
    assert np.array_equal(read, array)


def test_read_idx_labels(tmp_path):
    path = write_idx(tmp_path / "labels-idx1-ubyte", np.array([3, 1, 4, 1, 5]))
    assert datasets.read_idx(path).tolist() == [3, 1, 4, 1, 5]


def test_read_idx_big_endian_int32(tmp_path):
    values = np.array([1, -2, 70000], dtype=">i4")
    path = tmp_path / "ints-idx1"
    path.write_bytes(bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + values.tobytes())
    assert datasets.read_idx(path).tolist() == [1, -2, 70000]


@pytest.mark.parametrize("payload", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"PK\x03", b""])
def test_read_idx_bad_magic(tmp_path, payload):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(payload + b"\x00" * 8)
    with pytest.raises(BiaskitError) as caught:
        datasets.read_idx(path)
    assert str(path) in str(caught.value)
    assert "bad magic number" in str(caught.value)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated(tmp_path, compress):
    payload = idx_bytes(np.zeros((4, 5, 5), dtype=np.uint8))[:-7]
    path = tmp_path / ("short-idx3-ubyte" + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(BiaskitError) as caught:
        datasets.read_idx(path)
    message = str(caught.value)
    assert str(path) in message
    assert "truncated" in message
    assert f"has {len(payload)} bytes" in message


def test_read_idx_broken_gzip(tmp_path):
    path = tmp_path / "broken-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2), dtype=np.uint8)))[:-6])
    with pytest.raises(BiaskitError, match="cannot read IDX file") as caught:
        datasets.read_idx(path)
    assert str(path) in str(caught.value)


# Source lookup


def test_load_folder_values(tmp_path):
    folder = write_dataset(tmp_path / "data" / "mnist", train=12, test=4)
    base = datasets.mnist(data_dir=str(tmp_path / "data"))
    assert base.name == "mnist"
    assert base.train_images.shape == (12, 5, 5)
    assert base.train_images.dtype == torch.uint8
    assert base.train_labels.dtype == torch.int64
    assert base.test_labels.tolist() == [0, 1, 2, 3]
    assert base.class_names == [str(digit) for digit in range(10)]
    assert base.source == str(folder)
    expected = datasets.read_idx(folder / "train-images-idx3-ubyte")
    assert np.array_equal(base.train_images.numpy(), expected)


def test_load_mixed_gzip_and_raw(tmp_path):
    folder = tmp_path / "data"
    write_dataset(folder, train=12, compress=True)
    (folder / "t10k-labels-idx1-ubyte.gz").rename(folder / "t10k-labels-idx1-ubyte.gz.keep")
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(4) % 10)
    assert len(datasets.mnist(data_dir=str(folder)).test_labels) == 4


def test_data_dir_beats_environment(tmp_path, monkeypatch):
    write_dataset(tmp_path / "argument", train=12)
    write_dataset(tmp_path / "environment", train=14)
    monkeypatch.setenv("BIASKIT_DATA_DIR", str(tmp_path / "environment"))
    base = datasets.mnist(data_dir=str(tmp_path / "argument"))
    assert len(base.train_labels) == 12


def test_environment_beats_cache(tmp_path, monkeypatch, cache):
    write_dataset(tmp_path / "environment", train=14)
    write_dataset(cache / "data" / "mnist", train=16)
    monkeypatch.setenv("BIASKIT_DATA_DIR", str(tmp_path / "environment"))
    assert len(datasets.mnist().train_labels) == 14


def test_cache_used_last(cache):
    write_dataset(cache / "data" / "mnist", train=16)
    assert len(datasets.mnist().train_labels) == 16


def test_data_dir_falls_back_to_cache(tmp_path, cache):
    (tmp_path / "empty").mkdir()
    write_dataset(cache / "data", train=16)
    assert len(datasets.mnist(data_dir=str(tmp_path / "empty")).train_labels) == 16


def test_cache_beats_system_folder(tmp_path, monkeypatch, cache):
    write_dataset(cache / "data" / "fashion-mnist", train=16)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION", write_dataset(tmp_path / "system", train=18))
    assert len(datasets.fashion_mnist().train_labels) == 16


def test_system_folder_for_fashion(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION", write_dataset(tmp_path / "system", train=18))
    base = datasets.fashion_mnist()
    assert len(base.train_labels) == 18
    assert base.class_names[0] == "T-shirt/top"


def test_subfolder_beats_root(tmp_path):
    write_dataset(tmp_path / "data", train=12)
    write_dataset(tmp_path / "data" / "mnist-10k", train=14)
    assert len(datasets.mnist(data_dir=str(tmp_path / "data")).train_labels) == 14


def test_subfolder_order(tmp_path):
    write_dataset(tmp_path / "data" / "mnist", train=12)
    write_dataset(tmp_path / "data" / "MNIST" / "raw", train=14)
    assert len(datasets.mnist(data_dir=str(tmp_path / "data")).train_labels) == 12


@pytest.mark.parametrize("subfolder", ["mnist", "mnist-10k", "MNIST/raw", "."])
def test_mnist_subfolders(tmp_path, subfolder):
    folder = write_dataset(tmp_path / "data" / subfolder, train=12)
    base = datasets.mnist(data_dir=str(tmp_path / "data"))
    assert Path(base.source) == folder.resolve() or Path(base.source) == folder


@pytest.mark.parametrize("subfolder", ["fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "."])
def test_fashion_subfolders(tmp_path, subfolder, no_system_folder):
    write_dataset(tmp_path / "data" / subfolder, train=12)
    assert len(datasets.fashion_mnist(data_dir=str(tmp_path / "data")).train_labels) == 12


def test_incomplete_folder_skipped(tmp_path):
    write_dataset(tmp_path / "data" / "mnist", train=12)
    (tmp_path / "data" / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    write_dataset(tmp_path / "data" / "mnist-10k", train=14)
    assert len(datasets.mnist(data_dir=str(tmp_path / "data")).train_labels) == 14


def test_other_dataset_subfolder_ignored(tmp_path, no_system_folder):
    write_dataset(tmp_path / "data" / "mnist", train=12)
    with pytest.raises(BiaskitError, match="fashion-mnist: IDX files not found"):
        datasets.fashion_mnist(data_dir=str(tmp_path / "data"))


def test_label_out_of_range(tmp_path):
    folder = write_dataset(tmp_path / "data", train=12)
    write_idx(folder / "train-labels-idx1-ubyte", np.full(12, 10))
    with pytest.raises(BiaskitError) as caught:
        datasets.mnist(data_dir=str(folder))
    assert "label 10" in str(caught.value)
    assert str(folder / "train-labels-idx1-ubyte") in str(caught.value)


def test_label_count_mismatch(tmp_path):
    folder = write_dataset(tmp_path / "data", train=12)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(3))
    with pytest.raises(BiaskitError, match=r"test images have shape \(4, 5, 5\) and labels \(3,\)"):
        datasets.mnist(data_dir=str(folder))


def test_missing_lists_every_place(tmp_path, no_system_folder, cache):
    data_dir = tmp_path / "empty"
    data_dir.mkdir()
    with pytest.raises(BiaskitError) as caught:
        datasets.fashion_mnist(data_dir=str(data_dir))
    message = str(caught.value)
    expected_places = [
        data_dir / "fashion-mnist", data_dir / "fashion_mnist", data_dir / "FashionMNIST" / "raw", data_dir,
        cache / "data" / "fashion-mnist", cache / "data" / "fashion_mnist",
        cache / "data" / "FashionMNIST" / "raw", cache / "data", no_system_folder,
    ]
    listed = message.split("looked in: ")[1].split("; ")[0].split(", ")
    assert listed == [str(place) for place in expected_places]
    assert "--data-dir" in message
    assert "--download" in message
    assert "\n" not in message


def test_missing_writes_nothing(tmp_path, no_system_folder, cache):
    with pytest.raises(BiaskitError):
        datasets.fashion_mnist()
    assert not cache.exists()
    assert not no_system_folder.exists()


def test_missing_mnist_has_no_system_folder(no_system_folder):
    with pytest.raises(BiaskitError) as caught:
        datasets.mnist()
    assert "/usr/share" not in str(caught.value)


def test_environment_named_in_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("BIASKIT_DATA_DIR", str(tmp_path / "from-environment"))
    with pytest.raises(BiaskitError, match="from-environment"):
        datasets.mnist()


# Downloads, with torchvision's dataset class replaced by fakes


def fake_torchvision_class(folder_name: str, calls: list, fail_on_train: bool | None = None,
                           skip_file: str | None = None):
    """Return a stand-in for a torchvision dataset class that writes IDX files locally.

    It writes into ``root/<folder_name>/raw`` like torchvision does. With
    `fail_on_train` set, the call with that `train` value writes one file and raises.
    """

    class FakeDataset:
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            raw = Path(root) / folder_name / "raw"
            if fail_on_train is not None and train == fail_on_train:
                raw.mkdir(parents=True, exist_ok=True)
                (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08")
                raise ConnectionError("fake network failure")
            if train:
                write_dataset(raw, train=20)
                if skip_file:
                    (raw / skip_file).unlink()

    return FakeDataset


def test_download_success(monkeypatch, cache):
    calls = []
    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_torchvision_class("MNIST", calls))
    base = datasets.mnist(download=True)
    assert len(base.train_labels) == 20
    assert [call[1:] for call in calls] == [(True, True), (False, True)]
    assert base.source == str(cache / "data" / "MNIST" / "raw")


def test_download_leaves_only_final_files(monkeypatch, cache):
    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_torchvision_class("MNIST", []))
    datasets.mnist(download=True)
    names = sorted(str(path.relative_to(cache / "data")) for path in files_under(cache))
    assert names == sorted(f"MNIST/raw/{stem}" for stem in datasets.FILES.values())


def test_download_then_cache_hit(monkeypatch, cache):
    calls = []
    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_torchvision_class("MNIST", calls))
    datasets.mnist(download=True)
    datasets.mnist(download=True)
    assert len(calls) == 2


def test_download_by_environment(monkeypatch, no_system_folder):
    calls = []
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", fake_torchvision_class("FashionMNIST", calls))
    monkeypatch.setenv("BIASKIT_DOWNLOAD", "1")
    assert len(datasets.fashion_mnist().train_labels) == 20
    assert len(calls) == 2


def test_download_not_attempted_by_default(monkeypatch, no_system_folder):
    calls = []
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", fake_torchvision_class("FashionMNIST", calls))
    with pytest.raises(BiaskitError):
        datasets.fashion_mnist()
    assert calls == []


@pytest.mark.parametrize("fail_on_train", [True, False])
def test_download_failure_leaves_nothing(monkeypatch, cache, fail_on_train):
    fake = fake_torchvision_class("MNIST", [], fail_on_train=fail_on_train)
    monkeypatch.setattr(torchvision.datasets, "MNIST", fake)
    with pytest.raises(BiaskitError) as caught:
        datasets.mnist(download=True)
    message = str(caught.value)
    assert "download through torchvision" in message
    assert "fake network failure" in message
    assert "--data-dir" in message
    assert files_under(cache) == []
    assert list((cache / "data").iterdir()) == []


def test_download_failure_keeps_earlier_download(monkeypatch, cache):
    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_torchvision_class("MNIST", []))
    datasets.mnist(download=True)
    before = {path: path.read_bytes() for path in files_under(cache)}
    (cache / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    before.pop(cache / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte")
    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_torchvision_class("MNIST", [], fail_on_train=True))
    with pytest.raises(BiaskitError):
        datasets.mnist(download=True)
    assert {path: path.read_bytes() for path in files_under(cache)} == before


def test_download_incomplete(monkeypatch, cache):
    fake = fake_torchvision_class("MNIST", [], skip_file="t10k-labels-idx1-ubyte")
    monkeypatch.setattr(torchvision.datasets, "MNIST", fake)
    with pytest.raises(BiaskitError, match="is missing some of the four IDX files"):
        datasets.mnist(download=True)


# make_biased_data


def indexed_base(train: int = 200, test: int = 50) -> BaseData:
    """Return a base whose image i stores i in pixel (0, 0) and (0, 1), so splits can be traced."""
    base = make_tiny_base(train, test)
    for images in (base.train_images, base.test_images):
        positions = torch.arange(len(images))
        images[:, 0, 0] = (positions % 256).to(torch.uint8)
        images[:, 0, 1] = (positions // 256).to(torch.uint8)
    return base


def source_index(split_base: torch.Tensor) -> torch.Tensor:
    return split_base[:, 0, 0].long() + 256 * split_base[:, 0, 1].long()


@pytest.fixture
def colour() -> ColourBias:
    return ColourBias()


@pytest.mark.parametrize(("val_fraction", "val", "train"), [(0.2, 40, 160), (0.25, 50, 150), (0.5, 100, 100)])
def test_split_sizes(tiny_base, colour, val_fraction, val, train):
    data = make_biased_data(tiny_base, colour, val_fraction=val_fraction)
    assert len(data.val) == val
    assert len(data.train) == train
    assert len(data.test) == 50
    assert data.train.images.shape == (train, 3, 28, 28)


def test_split_partitions_train(colour):
    base = indexed_base()
    data = make_biased_data(base, colour)
    train_index = source_index(data.train.base)
    val_index = source_index(data.val.base)
    everything = torch.cat([train_index, val_index]).sort().values
    assert torch.equal(everything, torch.arange(200))
    assert torch.equal(data.train.labels, base.train_labels[train_index])
    assert torch.equal(data.val.labels, base.train_labels[val_index])
    assert torch.equal(data.train.base, base.train_images[train_index])


def test_split_test_keeps_order(colour):
    base = indexed_base()
    data = make_biased_data(base, colour)
    assert torch.equal(source_index(data.test.base), torch.arange(50))
    assert torch.equal(data.test.labels, base.test_labels)


@pytest.mark.parametrize("split_name", ["train", "val"])
def test_aligned_count_at_least_ratio(colour, split_name):
    data = make_biased_data(make_tiny_base(2000, 10, size=6), colour)
    split = data.split(split_name)
    forced = round(0.95 * len(split))
    assert int(split.aligned.sum()) >= forced
    assert int((~split.aligned).sum()) <= len(split) - forced


@pytest.mark.parametrize("split_name", ["train", "val"])
def test_aligned_count_exact(colour, monkeypatch, split_name):
    base = make_tiny_base(400, 10, size=6)
    base.train_labels[base.train_labels == 9] = 8
    original = torch.randint

    def never_class_nine(low, high, size, **kwargs):
        # Every conflicting sample gets cue 9, which no label has, so no match is by chance.
        original(low, high, size, **kwargs)
        return torch.full(size, 9, dtype=torch.long)

    monkeypatch.setattr(torch, "randint", never_class_nine)
    split = make_biased_data(base, colour).split(split_name)
    forced = round(0.95 * len(split))
    assert int(split.aligned.sum()) == forced
    assert bool((split.cue_values[~split.aligned] == 9).all())


def test_aligned_ratio_one(colour):
    data = make_biased_data(make_tiny_base(400, 10, size=6), colour, aligned_ratio=1.0)
    assert bool(data.train.aligned.all())
    assert torch.equal(data.train.cue_values, data.train.labels)


def test_aligned_ratio_zero_is_uniform(colour):
    data = make_biased_data(make_tiny_base(5000, 10, size=6), colour, aligned_ratio=0.0)
    values = data.train.cue_values
    counts = torch.bincount(values, minlength=10)
    # 4000 uniform draws over 10 values: each count is 400 +- 19 (one standard deviation).
    assert int(counts.min()) > 300
    assert int(counts.max()) < 500
    matches = int(data.train.aligned.sum())
    # 4000 chance matches at 1/10: 400 +- 19.
    assert 300 < matches < 500


def test_conflicting_share_near_expected(colour):
    data = make_biased_data(make_tiny_base(5000, 10, size=6), colour)
    train = data.train
    forced = round(0.95 * len(train))
    chance = int(train.aligned.sum()) - forced
    # 200 random draws, each equal to the label with probability 1/10: 20 +- 4.2.
    assert 5 <= chance <= 40


def test_aligned_flags_match_values(tiny_base, colour):
    data = make_biased_data(tiny_base, colour)
    for split in (data.train, data.val, data.test):
        assert torch.equal(split.aligned, split.cue_values == split.labels)


def test_test_split_cue_offset(tiny_base, colour):
    data = make_biased_data(tiny_base, colour)
    assert torch.equal(data.test.cue_values, (data.test.labels + 5) % 10)
    assert not bool(data.test.aligned.any())


def test_test_offset_zero(tiny_base, colour):
    data = make_biased_data(tiny_base, colour, test_offset=0)
    assert bool(data.test.aligned.all())


def test_colour_background_zero(tiny_base, colour):
    data = make_biased_data(tiny_base, colour)
    for split in (data.train, data.val, data.test):
        background = (split.base == 0).unsqueeze(1).expand_as(split.images)
        assert bool((split.images[background] == 0).all())


def test_colour_pixel_by_hand(tiny_base, colour):
    data = make_biased_data(tiny_base, colour)
    split = data.test
    i = int((split.cue_values == 6).nonzero()[0])
    row, column = [int(v) for v in (split.base[i] > 0).nonzero()[0]]
    gray = int(split.base[i, row, column]) / 255
    red, green, blue = split.images[i, :, row, column].tolist()
    assert red == pytest.approx(gray, abs=1e-6)
    assert green == pytest.approx(0.5 * gray, abs=1e-6)
    assert blue == 0.0


def test_colour_images_equal_gray_times_palette(tiny_base, colour):
    data = make_biased_data(tiny_base, colour)
    gray = data.train.base.float().div(255).unsqueeze(1)
    expected = gray * colour.colours[data.train.cue_values].view(-1, 3, 1, 1)
    torch.testing.assert_close(data.train.images, expected, rtol=0, atol=1e-6)


def test_images_in_unit_range(tiny_base):
    for bias in (ColourBias(), ColourBias(target="background"), PatchBias(), GrayscaleBias()):
        data = make_biased_data(tiny_base, bias)
        for split in (data.train, data.val, data.test):
            assert split.images.dtype == torch.float32
            assert float(split.images.min()) >= 0.0
            assert float(split.images.max()) <= 1.0


def test_same_seed_bit_identical(tiny_base, colour):
    first = make_biased_data(tiny_base, colour, seed=3)
    second = make_biased_data(tiny_base, colour, seed=3)
    for name in ("train", "val", "test"):
        a, b = first.split(name), second.split(name)
        assert torch.equal(a.images, b.images)
        assert torch.equal(a.labels, b.labels)
        assert torch.equal(a.cue_values, b.cue_values)
        assert torch.equal(a.aligned, b.aligned)


def test_other_seed_differs(tiny_base, colour):
    first = make_biased_data(tiny_base, colour, seed=3)
    second = make_biased_data(tiny_base, colour, seed=4)
    assert not torch.equal(first.train.labels, second.train.labels)
    assert not torch.equal(first.train.cue_values, second.train.cue_values)


def test_base_not_mutated(tiny_base, colour):
    before = {name: getattr(tiny_base, name).clone()
              for name in ("train_images", "train_labels", "test_images", "test_labels")}
    make_biased_data(tiny_base, colour)
    for name, tensor in before.items():
        assert torch.equal(getattr(tiny_base, name), tensor)


def test_config_records_parameters(tiny_base, colour):
    data = make_biased_data(tiny_base, colour, aligned_ratio=0.9, test_offset=3, val_fraction=0.25, seed=7)
    assert data.config["aligned_ratio"] == 0.9
    assert data.config["test_offset"] == 3
    assert data.config["val_fraction"] == 0.25
    assert data.config["seed"] == 7
    assert data.config["bias"]["target"] == "stroke"
    assert data.name == "tiny+colour"
    assert data.in_chans == 3


def test_background_target_by_hand(tiny_base):
    bias = ColourBias(target="background")
    data = make_biased_data(tiny_base, bias)
    split = data.test
    i = int((split.cue_values == 0).nonzero()[0])
    assert split.images[i, :, 0, 27].tolist() == [1.0, 0.0, 0.0]
    row, column = [int(v) for v in (split.base[i] > 0).nonzero()[0]]
    gray = int(split.base[i, row, column]) / 255
    red, green, blue = split.images[i, :, row, column].tolist()
    assert red == pytest.approx(1.0, abs=1e-6)
    assert green == pytest.approx(gray, abs=1e-6)
    assert blue == pytest.approx(gray, abs=1e-6)


def test_patch_by_hand():
    bias = PatchBias(size=2)
    images = torch.full((2, 1, 5, 5), 0.5)
    rendered = bias.render(images, torch.tensor([2, 6]))
    assert rendered.shape == (2, 3, 5, 5)
    assert rendered[0, :, 0, 0].tolist() == [0.0, 0.0, 1.0]
    assert rendered[1, :, 1, 1].tolist() == [1.0, 0.5, 0.0]
    assert rendered[0, :, 2, 0].tolist() == [0.5, 0.5, 0.5]
    assert rendered[0, :, 0, 2].tolist() == [0.5, 0.5, 0.5]
    assert float(rendered[:, :, 2:, :].sub(0.5).abs().max()) == 0.0


def test_patch_bottom_right():
    rendered = PatchBias(size=2, corner="bottom-right").render(torch.zeros(1, 1, 5, 5), torch.tensor([1]))
    assert rendered[0, :, 4, 4].tolist() == [0.0, 1.0, 0.0]
    assert rendered[0, :, 3, 3].tolist() == [0.0, 1.0, 0.0]
    assert rendered[0, :, 2, 3].tolist() == [0.0, 0.0, 0.0]


def test_patch_render_keeps_input():
    images = torch.full((1, 1, 4, 4), 0.25)
    PatchBias(size=2).render(images, torch.tensor([0]))
    assert bool((images == 0.25).all())


def test_grayscale_equal_channels(tiny_base):
    data = make_biased_data(tiny_base, GrayscaleBias())
    images = data.train.images
    assert torch.equal(images[:, 0], images[:, 1])
    assert torch.equal(images[:, 0], images[:, 2])
    assert torch.equal(images[:, 0], data.train.base.float() / 255)
    assert bool((data.train.cue_values == 0).all())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aligned_ratio": 1.5}, "aligned_ratio must be in"),
        ({"aligned_ratio": -0.1}, "aligned_ratio must be in"),
        ({"val_fraction": 0.0}, "val_fraction must be in"),
        ({"val_fraction": 1.0}, "val_fraction must be in"),
    ],
)
def test_make_biased_data_invalid(tiny_base, colour, kwargs, message):
    with pytest.raises(UsageError, match=message):
        make_biased_data(tiny_base, colour, **kwargs)


def test_bias_without_values(tiny_base):
    with pytest.raises(UsageError, match="defines no cue values"):
        make_biased_data(tiny_base, Bias())


def test_bias_wrong_shape(tiny_base):
    class Flat(Bias):
        name = "flat"
        value_names = ["one"]

        def render(self, images, values):
            return images.flatten(1)

    with pytest.raises(ValueError, match="bias 'flat' returned shape"):
        make_biased_data(tiny_base, Flat())


# Palettes


def test_palette_default():
    names, colours = parse_palette(None)
    assert len(names) == 10
    assert names[6] == "orange"
    assert colours[6].tolist() == [1.0, 0.5, 0.0]
    assert colours[9].tolist() == [0.0, 0.5, 0.5]


def test_palette_text():
    names, colours = parse_palette("1,0,0;0,1,0")
    assert names == ["rgb(1,0,0)", "rgb(0,1,0)"]
    assert colours.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def test_palette_triples():
    names, colours = parse_palette([(0.5, 0.25, 1)])
    assert names == ["rgb(0.5,0.25,1)"]
    assert colours.shape == (1, 3)


@pytest.mark.parametrize("palette", ["", "1,0", "1,0,0;0,1", "a,b,c", "2,0,0", "-0.1,0,0", "nan,0,0",
                                     "inf,0,0", "1,0,0,", [(1, 0)]])
def test_palette_invalid(palette):
    with pytest.raises(UsageError, match="invalid palette"):
        parse_palette(palette)


def test_palette_through_registry(tiny_base):
    bias = registries().biases.create("colour", palette="0,0,1;1,1,1")
    assert bias.value_names == ["rgb(0,0,1)", "rgb(1,1,1)"]
    data = make_biased_data(tiny_base, bias)
    assert torch.equal(data.test.cue_values, (data.test.labels + 5) % 2)


@pytest.mark.parametrize(("name", "params", "message"), [
    ("colour", {"target": "edge"}, "invalid target 'edge'"),
    ("patch", {"corner": "middle"}, "invalid corner 'middle'"),
    ("patch", {"size": "0"}, "invalid size 0"),
    ("colour", {"palette": "1,2,3"}, "invalid palette"),
])
def test_bias_invalid_parameters(name, params, message):
    with pytest.raises(UsageError, match=message):
        registries().biases.create(name, **params)
