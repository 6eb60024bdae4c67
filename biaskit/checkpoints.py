"""Checkpoints as a safetensors weights file plus a JSON metadata file, written atomically.

Layout: ``NAME.safetensors`` and ``NAME.json`` side by side. The JSON is written last,
so a folder with weights and no JSON is an interrupted write and is never loaded. The
JSON records the sha256 of the weights, so a truncated, swapped or edited weights
file is detected before use. Nothing here unpickles: safetensors stores raw tensors.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import BiaskitError

FORMAT = "biaskit-checkpoint"
FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write `payload` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def paths_for(path: str | os.PathLike) -> tuple[Path, Path]:
    """Return (weights, metadata) paths for a checkpoint given by either file or its stem."""
    path = Path(path)
    if path.is_dir():
        path = path / "model"
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save(path: str | os.PathLike, model: torch.nn.Module, metadata: dict[str, Any]) -> Path:
    """Save `model`'s state dict and `metadata`; return the weights path."""
    weights_path, meta_path = paths_for(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    handle, temporary = tempfile.mkstemp(dir=weights_path.parent, prefix=".weights.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(state, temporary, metadata={"format": FORMAT})
        os.replace(temporary, weights_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    record = dict(metadata, format=FORMAT, format_version=FORMAT_VERSION, sha256=_sha256(weights_path))
    atomic_write_json(meta_path, record)
    return weights_path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint's JSON; raise `BiaskitError` naming the file and the fix."""
    weights_path, meta_path = paths_for(path)
    if not meta_path.exists():
        hint = " (its weights exist: the write was interrupted)" if weights_path.exists() else ""
        raise BiaskitError(
            f"checkpoint metadata {str(meta_path)!r} not found{hint}; "
            "pass a checkpoint written by 'biaskit train' or retrain with 'biaskit train RECIPE --retrain'"
        )
    try:
        metadata = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BiaskitError(
            f"checkpoint metadata {str(meta_path)!r} is not valid JSON ({error}); "
            "delete it and retrain with 'biaskit train RECIPE --retrain'"
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise BiaskitError(
            f"{str(meta_path)!r} is not a biaskit checkpoint (no format {FORMAT!r}); "
            "pass a checkpoint written by 'biaskit train', or retrain with 'biaskit train RECIPE --retrain'"
        )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise BiaskitError(
            f"checkpoint {str(meta_path)!r} has format version {metadata.get('format_version')!r}, "
            f"this biaskit reads version {FORMAT_VERSION}; retrain it with 'biaskit train RECIPE --retrain'"
        )
    return metadata


def load_state(path: str | os.PathLike, metadata: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Load the weights after checking their sha256 against the metadata."""
    weights_path, _ = paths_for(path)
    if not weights_path.exists():
        raise BiaskitError(
            f"checkpoint weights {str(weights_path)!r} not found; retrain with 'biaskit train RECIPE --retrain'"
        )
    if _sha256(weights_path) != metadata.get("sha256"):
        raise BiaskitError(
            f"checkpoint weights {str(weights_path)!r} do not match their metadata (sha256 differs): "
            "the file is corrupt or was replaced; retrain with 'biaskit train RECIPE --retrain'"
        )
    try:
        return load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as error:
        raise BiaskitError(
            f"cannot read checkpoint weights {str(weights_path)!r} ({error}); retrain with 'biaskit train RECIPE --retrain'"
        ) from None


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy `state` into `model`, raising `BiaskitError` on missing, extra or misshapen tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or extra or misshapen:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", misshapen)):
            if keys:
                problems.append(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}")
        raise BiaskitError(
            f"checkpoint {source!r} does not fit its model ({'; '.join(problems)}); "
            "retrain with 'biaskit train RECIPE --retrain'"
        )
    model.load_state_dict(state)
