"""On-disk cache of trained torch modules (autoencoders, classifiers), safe against corruption.

A cache file is ``torch.save`` of ``{"format_version", "meta", "payload", "sha256", "extra"}``
where ``payload`` holds the serialised ``state_dict`` and ``sha256`` its digest. A file is
used only if it loads with ``weights_only=True``, has this :data:`FORMAT_VERSION`, its
``meta`` equals the requested meta exactly (data set, architecture, latent dim, epochs,
seed, ...), its digest matches and the state dict loads strictly into the freshly built
module. Anything else emits a :class:`CacheWarning` and the module is retrained and the file
rewritten. Writes are atomic (temporary file in the same folder, fsync, ``os.replace``), so
an interrupted run never leaves a half-written file under the final name.

Cache folder: :func:`default_cache_dir` = ``$PARTICLE_BENCH_CACHE`` if set, else
``~/.cache/particle-bench``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT_VERSION = 1
CACHE_ENV = "PARTICLE_BENCH_CACHE"


class CacheWarning(UserWarning):
    """A cache file was unusable (corrupt, incompatible, failed to load) and is rebuilt."""


def default_cache_dir() -> Path:
    """``$PARTICLE_BENCH_CACHE`` if set, else ``~/.cache/particle-bench``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "particle-bench"


def cache_file(
    cache_dir: str | os.PathLike[str],
    kind: str,
    meta: dict[str, Any],
    head: tuple[str, ...] = ("dataset", "arch", "latent_dim", "epochs", "seed"),
) -> Path:
    """``<cache_dir>/<kind>__dataset=..__arch=..__..__<digest>.pt``: the ``head`` fields of
    ``meta`` in that order (readable), then a digest of the whole sorted ``meta``."""
    parts = [kind] + [f"{k}={meta[k]}" for k in head if k in meta]
    full = repr(sorted((str(k), repr(v)) for k, v in meta.items()))
    parts.append(hashlib.sha256(full.encode()).hexdigest()[:16])
    name = re.sub(r"[^A-Za-z0-9_.=,-]+", "-", "__".join(parts))
    return Path(cache_dir) / f"{name}.pt"


def _state_bytes(module: nn.Module) -> bytes:
    buf = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    torch.save(state, buf)
    return buf.getvalue()


def save_module(
    path: str | os.PathLike[str], module: nn.Module, meta: dict[str, Any], extra: dict[str, Any]
) -> None:
    """Atomically write ``module``'s weights with ``meta`` and ``extra`` (plain python data)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = _state_bytes(module)
    record = {
        "format_version": FORMAT_VERSION,
        "meta": dict(meta),
        "payload": payload,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "extra": dict(extra),
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, CACHE_FILE_MODE)  # mkstemp creates 0600; the cache is shared data
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_module(
    path: str | os.PathLike[str], module: nn.Module, meta: dict[str, Any]
) -> dict[str, Any] | None:
    """Load weights into ``module`` from ``path``; the stored ``extra`` dict, or None.

    None (with a :class:`CacheWarning` unless the file is simply absent) when the file
    cannot be used; ``module`` is then left as it was.
    """
    path = Path(path)
    if not path.exists():
        return None
    problem = _read_and_load(path, module, meta)
    if isinstance(problem, str):
        warnings.warn(
            f"cache file {path} is unusable ({problem}); retraining and overwriting it",
            CacheWarning,
            stacklevel=3,
        )
        return None
    return problem


def _read_and_load(path: Path, module: nn.Module, meta: dict[str, Any]) -> dict[str, Any] | str:
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt pickles raise many types
        return f"cannot be read: {type(err).__name__}: {err}"
    if not isinstance(record, dict):
        return "not a cache record"
    if record.get("format_version") != FORMAT_VERSION:
        return f"format version {record.get('format_version')!r} != {FORMAT_VERSION}"
    if record.get("meta") != dict(meta):
        return f"metadata {record.get('meta')!r} differs from the requested {dict(meta)!r}"
    payload = record.get("payload")
    if not isinstance(payload, bytes):
        return "no weights payload"
    if hashlib.sha256(payload).hexdigest() != record.get("sha256"):
        return "checksum mismatch (file corrupted)"
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        module.load_state_dict({k: v.to(device) for k, v in state.items()}, strict=True)
    except Exception as err:
        return f"weights do not fit the model: {type(err).__name__}: {err}"
    extra = record.get("extra", {})
    return extra if isinstance(extra, dict) else {}


@dataclass
class CachedModule:
    """A module with its training record; ``from_cache`` says whether it was loaded."""

    module: nn.Module
    extra: dict[str, Any]
    from_cache: bool
    path: Path


def load_or_train(
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], dict[str, Any]],
) -> CachedModule:
    """Load ``build()``'s weights from ``path`` if valid, else ``train`` it and save it.

    ``train(module)`` trains in place and returns a dict of plain python values (history,
    timings) that is stored with the weights and returned as ``extra``.
    """
    path = Path(path)
    module = build()
    extra = load_module(path, module, meta)
    if extra is not None:
        module.eval()
        return CachedModule(module, extra, True, path)
    module = build()  # fresh weights: a failed strict load may have touched some
    extra = train(module)
    module.eval()
    try:
        save_module(path, module, meta, extra)
    except OSError as exc:  # the cache is an optimisation: keep the trained model
        _warn_unwritable(path.parent, exc)
    return CachedModule(module, extra, False, path)


#: permissions of cache files (readable by group and others, like any shared data file)
CACHE_FILE_MODE = 0o644
_WARNED: set[str] = set()


def _warn_unwritable(folder: Path, exc: OSError) -> None:
    """Warn once per folder that the model cache cannot be written (the run goes on)."""
    if str(folder) in _WARNED:
        return
    _WARNED.add(str(folder))
    warnings.warn(
        f"model cache {folder} is not writable ({type(exc).__name__}: {exc}); models are "
        "trained again in every run. Set PARTICLE_BENCH_CACHE to a writable folder.",
        stacklevel=3,
    )
