"""Base datasets MNIST and Fashion-MNIST, read from the standard IDX files.

Where the files are looked for, in order:

1. the ``data_dir`` argument (``--data-dir``), else ``$BIASKIT_DATA_DIR``;
2. biaskit's cache folder, ``<cache>/data``;
3. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``), Fashion-MNIST only;
4. a torchvision download into ``<cache>/data``, only when ``download=True`` or
   ``$BIASKIT_DOWNLOAD=1``.

Inside a root folder, the dataset's own subfolder (``fashion-mnist/``, ``mnist/``,
``mnist-10k/``) and torchvision's layout (``FashionMNIST/raw/``, ``MNIST/raw/``) are
tried before the root itself. Files may be gzip-compressed or not.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from biaskit.data import BaseData, cache_dir
from biaskit.errors import BiaskitError, UsageError
from biaskit.hookspecs import hookimpl

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
DIGIT_CLASSES = [str(digit) for digit in range(10)]

# IDX type codes (third byte of the magic number) and the numpy types they denote.
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            payload = stream.read()
    except (OSError, EOFError) as error:
        raise BiaskitError(f"cannot read IDX file {str(path)!r} ({error}); replace the file") from None
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] not in IDX_TYPES:
        raise BiaskitError(f"{str(path)!r} is not an IDX file (bad magic number); replace the file")
    ndim = payload[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[payload[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(payload) != expected:
        raise BiaskitError(
            f"IDX file {str(path)!r} has {len(payload)} bytes, its header promises {expected}; "
            "the file is truncated or corrupt, replace it"
        )
    return np.frombuffer(payload, dtype=dtype, offset=header).reshape(shape)


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _complete_folder(folder: Path) -> dict[str, Path] | None:
    found = {key: _find_file(folder, stem) for key, stem in FILES.items()}
    return found if all(found.values()) else None


def _load_folder(name: str, files: dict[str, Path], class_names: list[str]) -> BaseData:
    arrays = {key: read_idx(path) for key, path in files.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise BiaskitError(
                f"{name}: {part} images have shape {images.shape} and labels {labels.shape}; "
                f"expected (N, H, W) and (N,) in {str(files[f'{part}_images'].parent)!r}"
            )
        if labels.size and labels.max() >= len(class_names):
            raise BiaskitError(
                f"{name}: label {int(labels.max())} in {str(files[f'{part}_labels'])!r} "
                f"is out of range for {len(class_names)} classes"
            )
    return BaseData(
        name=name,
        train_images=torch.from_numpy(arrays["train_images"].astype(np.uint8)),
        train_labels=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_images=torch.from_numpy(arrays["test_images"].astype(np.uint8)),
        test_labels=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        class_names=class_names,
        source=str(files["train_images"].parent),
    )


def _download(torchvision_class: str, target: Path) -> Path:
    """Download through torchvision into a temporary folder, then move it into `target`.

    A failed download leaves nothing behind, so a half-written file is never read later.
    """
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, torchvision_class)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=".download-"))
    try:
        for train in (True, False):
            dataset_class(str(staging), train=train, download=True)
        raw = staging / torchvision_class / "raw"
        final = target / torchvision_class / "raw"
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(raw, final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_idx_dataset(
    name: str,
    subfolders: list[str],
    class_names: list[str],
    torchvision_class: str,
    *,
    data_dir: str | None,
    download: bool,
    system_folders: tuple[Path, ...] = (),
) -> BaseData:
    """Find the four IDX files of `name` in the documented order and load them."""
    roots: list[tuple[str, Path]] = []
    explicit = data_dir or os.environ.get("BIASKIT_DATA_DIR")
    if explicit:
        origin = "--data-dir" if data_dir else "$BIASKIT_DATA_DIR"
        if not Path(explicit).expanduser().is_dir():
            raise UsageError(f"{origin} folder {explicit!r} not found; pass the folder that contains the IDX files")
        roots.append((origin, Path(explicit).expanduser()))
    roots.append(("cache", cache_dir() / "data"))

    tried = []
    for origin, root in roots:
        for folder in [root / sub for sub in subfolders] + [root]:
            tried.append(str(folder))
            files = _complete_folder(folder)
            if files:
                return _load_folder(name, files, class_names)
    for folder in system_folders:
        tried.append(str(folder))
        files = _complete_folder(folder)
        if files:
            return _load_folder(name, files, class_names)

    allowed = download or os.environ.get("BIASKIT_DOWNLOAD", "") in ("1", "true", "yes")
    if allowed:
        target = cache_dir() / "data"
        try:
            folder = _download(torchvision_class, target)
        except Exception as error:  # any network or HTTP failure from torchvision
            raise BiaskitError(
                f"{name}: download through torchvision into {str(target)!r} failed ({error}); "
                f"looked in: {', '.join(tried)}; put the IDX files in one of them or pass --data-dir"
            ) from None
        files = _complete_folder(folder)
        if files is None:
            raise BiaskitError(
                f"{name}: the torchvision download into {str(folder)!r} is missing some of the four "
                "IDX files; delete that folder and retry, or pass --data-dir"
            )
        return _load_folder(name, files, class_names)
    raise BiaskitError(
        f"{name}: IDX files not found; looked in: {', '.join(tried)}; "
        "pass --data-dir DIR (or set BIASKIT_DATA_DIR) to a folder holding them, "
        "or add --download to fetch them through torchvision"
    )


def fashion_mnist(data_dir: str | None = None, download: bool = False) -> BaseData:
    """Fashion-MNIST: 60,000 train and 10,000 test 28x28 grayscale images of clothing."""
    return load_idx_dataset(
        "fashion-mnist", ["fashion-mnist", "fashion_mnist", "FashionMNIST/raw"],
        FASHION_CLASSES, "FashionMNIST",
        data_dir=data_dir, download=download, system_folders=(DEBIAN_FASHION,),
    )


def mnist(data_dir: str | None = None, download: bool = False) -> BaseData:
    """MNIST handwritten digits, 28x28 grayscale (the full set or a subset in IDX form)."""
    return load_idx_dataset(
        "mnist", ["mnist", "mnist-10k", "MNIST/raw"], DIGIT_CLASSES, "MNIST",
        data_dir=data_dir, download=download,
    )


@hookimpl
def biaskit_register_datasets(registry):
    registry.add("fashion-mnist", fashion_mnist)
    registry.add("mnist", mnist)
