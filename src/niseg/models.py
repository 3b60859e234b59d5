"""The ``Segmenter`` protocol and the ``.niseg`` model file.

Every trained model in niseg (the smoothed threshold, the pixel classifier, the U-Net) speaks
the same protocol, so the command line, :func:`niseg.tiling.predict_tiled` and the batch code
treat them alike, and every model is saved as one ``.niseg`` file:

a zip archive holding

- ``model.json``: container format and version, the model ``kind`` and its own version, the
  niseg version that wrote it, classes, halo, spatial dimensions, channels, the constructor
  ``params``, learned scalar ``state``, intensity ``normalization`` and training
  ``provenance`` (input file hashes, date, seed, iterations, validation metrics), plus the
  SHA-256 of every other member;
- ``weights.skops`` (optional): learned scikit-learn estimators and NumPy arrays, written with
  skops and loaded with an explicit allow-list of types, so no arbitrary object is unpickled;
- ``weights.safetensors`` (optional): tensors (PyTorch weights), which are plain arrays by
  construction.

Loading validates the JSON, checks the checksums, refuses unknown kinds and newer format
versions and never unpickles arbitrary objects.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import importlib
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from niseg.io import atomic_output

__all__ = [
    "FORMAT_VERSION",
    "ModelState",
    "Segmenter",
    "as_array_list",
    "check_binary_mask",
    "check_finite_image",
    "check_sparse_labels",
    "file_sha256",
    "item_name",
    "load_model",
    "margin_uncertainty",
    "model_kinds",
    "read_model_info",
    "register_model_kind",
    "save_model",
]

#: Version of the ``.niseg`` container written by this niseg.
FORMAT_VERSION = 1

_FORMAT_NAME = "niseg-model"
_JSON_NAME = "model.json"
_SKOPS_NAME = "weights.skops"
_SAFETENSORS_NAME = "weights.safetensors"
_ALLOWED_MEMBERS = {_JSON_NAME, _SKOPS_NAME, _SAFETENSORS_NAME}
_MAX_JSON_BYTES = 16 * 1024 * 1024

# Model kinds that can be loaded, as "module:Class", imported only when a file of that kind is
# loaded (so loading a threshold model never imports torch).
_MODEL_KINDS: dict[str, str] = {
    "smoothed-threshold": "niseg.threshold:ThresholdSegmenter",
    "pixel-classifier": "niseg.classify:PixelClassifier",
    "unet": "niseg.deep:UNetSegmenter",
    "spot-cnn": "niseg.deep:CNNSpotDetector",
}

# Types a weights.skops member may contain beyond skops's own defaults (primitives, NumPy
# arrays, scikit-learn estimators). Exact names only: a prefix such as "sklearn." would also
# trust plain functions that scikit-learn modules import (subprocess.check_output, os.remove),
# which skops would call while loading. Anything else is refused before an object is built.
_TRUSTED_TYPES = frozenset(
    {
        # the fitted trees inside random forests, extra trees and decision trees
        "sklearn.tree._tree.Tree",
        # the fitted trees of histogram gradient boosting
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        # the optimizer state kept by MLP classifiers
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        # the search trees and distance of k-nearest-neighbour classifiers
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
    }
)

# Decompressed size limit of one member, so a crafted archive cannot exhaust memory.
_MAX_MEMBER_BYTES = 4 * 1024**3


@runtime_checkable
class Segmenter(Protocol):
    """What every trained segmentation model in niseg provides.

    Estimators follow scikit-learn: ``__init__`` only stores parameters, ``fit`` validates
    its input, learns, and returns ``self``; learned state ends in ``_``.

    Attributes
    ----------
    classes_ : (K,) ndarray
        The label value predicted for each probability channel: ``[0, 1]`` for binary models
        (0 = background, 1 = foreground), ``[1, ..., K]`` for multi-class models.
    halo : int or tuple of int
        Receptive-field radius in pixels (per spatial axis when a tuple): the output at a pixel
        depends only on input pixels within this distance. :func:`niseg.tiling.predict_tiled`
        reads this much context around every tile.
    spatial_dims : int
        2 for images, 3 for volumes.
    n_channels_ : int
        Number of input channels. With more than one, images carry channels on the last axis.

    Notes
    -----
    ``predict_proba(image)`` takes an image of shape ``(*spatial[, C])`` and returns float32
    probabilities of shape ``(*spatial, K)``; ``predict(image)`` returns the label image of
    shape ``spatial`` holding values from ``classes_``. Models are saved and loaded with
    :func:`save_model` and :func:`load_model`.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.threshold import ThresholdSegmenter
    >>> model = ThresholdSegmenter(sigma=1.0).fit(np.random.default_rng(0).random((32, 32)))
    >>> isinstance(model, Segmenter)
    True
    """

    classes_: np.ndarray
    n_channels_: int

    @property
    def halo(self) -> int | tuple[int, ...]: ...

    @property
    def spatial_dims(self) -> int: ...

    def fit(self, images: Any, labels: Any = None, *, masks: Any = None) -> Segmenter: ...

    def predict_proba(self, image: np.ndarray) -> np.ndarray: ...

    def predict(self, image: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass
class ModelState:
    """Everything a model kind needs to write itself to, and rebuild itself from, a model file.

    Parameters
    ----------
    params : dict
        Constructor parameters (JSON-able); the model is rebuilt as ``cls(**params)``.
    state : dict
        Learned state that is JSON-able (thresholds, class values, feature names ...).
    estimators : dict, optional
        Learned objects written with skops: scikit-learn estimators and NumPy arrays.
    tensors : dict, optional
        Named arrays written as safetensors (network weights); values are NumPy arrays.
    normalization : dict, optional
        Intensity normalization applied before the model (JSON-able).
    provenance : dict, optional
        How the model was trained: input hashes, date, seed, iterations, validation metrics.

    Examples
    --------
    >>> ModelState(params={"sigma": 1.0}, state={"threshold_": 0.5}).params
    {'sigma': 1.0}
    """

    params: dict[str, Any]
    state: dict[str, Any]
    estimators: dict[str, Any] | None = None
    tensors: dict[str, np.ndarray] | None = None
    normalization: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None


def as_array_list(value: Any, name: str) -> list[np.ndarray]:
    """Normalise the ``images`` / ``labels`` / ``masks`` argument of ``Segmenter.fit``.

    Every segmenter accepts one array or a list (tuple) of arrays; this turns either into a
    list of arrays, with one clear error for what is neither.

    Parameters
    ----------
    value : array_like or sequence of array_like
        One image, or several.
    name : str
        The argument's name, for error messages.

    Returns
    -------
    list of ndarray

    Examples
    --------
    >>> import numpy as np
    >>> len(as_array_list(np.zeros((4, 4)), "images")), len(as_array_list([1, 2], "images"))
    (1, 2)
    """
    if value is None:
        raise ValueError(f"{name} is missing")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array or a list of arrays, not a string")
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} is empty; give at least one array")
        return [np.asarray(v) for v in value]
    return [np.asarray(value)]


def item_name(name: str, i: int, n: int) -> str:
    """``name`` for a single array, ``name[i]`` for one of ``n > 1``, for error messages.

    Examples
    --------
    >>> item_name("labels", 0, 1), item_name("labels", 2, 3)
    ('labels', 'labels[2]')
    """
    return name if n == 1 else f"{name}[{i}]"


def check_finite_image(image: np.ndarray, name: str) -> None:
    """Refuse an image a segmenter cannot use: non-numeric, NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> check_finite_image(np.array([[1.0, np.nan]]), "image")
    Traceback (most recent call last):
    ...
    ValueError: image contains NaN or infinite values; replace them first
    """
    if image.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {image.dtype}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinite values; replace them first")


def check_sparse_labels(labels: np.ndarray, name: str) -> np.ndarray:
    """Sparse training labels (0 = unlabeled, 1..K = classes) as an integer array.

    Booleans become uint8 and whole-number floats int64; fractions, NaN, other dtypes and
    negative values are refused with one sentence.

    Examples
    --------
    >>> import numpy as np
    >>> check_sparse_labels(np.array([[0.0, 2.0]]), "labels").dtype
    dtype('int64')
    """
    if labels.dtype.kind == "b":
        return labels.astype(np.uint8)
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or np.any(labels != np.round(labels)):
            raise TypeError(f"{name} must hold whole-number class values, got fractions")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class values, got dtype {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds negative values; use 0 for unlabeled and 1..K for "
                         "classes")
    return labels


def margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """Uncertainty ``1 - (p1 - p2)`` from the two largest class probabilities, as ilastik.

    Parameters
    ----------
    proba : (..., K) ndarray
        Class probabilities on the last axis (``Segmenter.predict_proba``).

    Returns
    -------
    (...) ndarray of float32
        0 where one class is certain, 1 where the top two classes tie (0 for ``K = 1``).

    Examples
    --------
    >>> import numpy as np
    >>> margin_uncertainty(np.array([[0.9, 0.1], [0.5, 0.5]], np.float32)).astype(float).round(3).tolist()
    [0.2, 1.0]
    """
    if proba.shape[-1] < 2:
        return np.zeros(proba.shape[:-1], np.float32)
    top = np.partition(proba, proba.shape[-1] - 2, axis=-1)[..., -2:]
    return (np.float32(1) - (top[..., 1] - top[..., 0])).astype(np.float32)

def check_binary_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """A dense binary mask (0 and one non-zero value, e.g. 0/1 or 0/255) as uint8 0/1.

    A mask with more values is refused, naming them: multi-class data belongs in labels.

    Examples
    --------
    >>> import numpy as np
    >>> check_binary_mask(np.array([[0, 255]]), "mask").tolist()
    [[0, 1]]
    """
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {mask.dtype}")
    values = np.unique(mask)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if values.size > 6 else "")
        raise ValueError(f"{name} must be binary (0 and one non-zero value) but holds the "
                         f"values {shown}; pass multi-class data as labels")
    return (mask != 0).astype(np.uint8)


def register_model_kind(kind: str, target: str) -> None:
    """Register a model class that :func:`load_model` may build.

    Parameters
    ----------
    kind : str
        The ``kind`` written in ``model.json``.
    target : str
        ``"package.module:ClassName"``; the module is imported only when such a file is loaded.
        The class must provide ``model_kind``, ``model_version``, ``to_model_state()`` and the
        classmethod ``from_model_state(state)``.

    Examples
    --------
    >>> register_model_kind("smoothed-threshold", "niseg.threshold:ThresholdSegmenter")
    >>> "smoothed-threshold" in model_kinds()
    True
    """
    if ":" not in target:
        raise ValueError(f"target must look like 'module:ClassName', got {target!r}")
    _MODEL_KINDS[kind] = target


def model_kinds() -> dict[str, str]:
    """Return the registered model kinds and the classes they load into.

    Examples
    --------
    >>> model_kinds()["smoothed-threshold"]
    'niseg.threshold:ThresholdSegmenter'
    """
    return dict(_MODEL_KINDS)


def file_sha256(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file (used for training provenance).

    Parameters
    ----------
    path : str or PathLike
        The file to hash.
    chunk_size : int
        Bytes read at a time, so large inputs hash in bounded memory.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> file_sha256(p)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(
    model: Any,
    path: str | os.PathLike,
    *,
    provenance: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a fitted model to one ``.niseg`` file.

    Parameters
    ----------
    model : Segmenter
        A fitted model whose class is registered (see :func:`register_model_kind`).
    path : str or PathLike
        Output file; conventionally ends in ``.niseg``.
    provenance : mapping, optional
        Extra training provenance (input file hashes, seed, validation metrics ...), merged
        over what the model recorded itself. The date and niseg version are always added.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file. It is written to a temporary name and renamed when complete.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from niseg.threshold import ThresholdSegmenter
    >>> model = ThresholdSegmenter().fit(np.random.default_rng(0).random((32, 32)))
    >>> out = save_model(model, pathlib.Path(tempfile.mkdtemp()) / "t.niseg")
    >>> load_model(out).threshold_ == model.threshold_
    True
    """
    import niseg

    kind = getattr(model, "model_kind", None)
    if kind not in _MODEL_KINDS:
        raise TypeError(
            f"cannot save a {type(model).__name__}: it is not a registered niseg model kind"
        )
    if not hasattr(model, "classes_"):
        raise ValueError(f"cannot save the {type(model).__name__}: it has not been fitted")
    state: ModelState = model.to_model_state()

    members: dict[str, bytes] = {}
    if state.estimators:
        import skops.io as sio

        members[_SKOPS_NAME] = sio.dumps(dict(state.estimators))
    if state.tensors:
        members[_SAFETENSORS_NAME] = _dump_safetensors(state.tensors)

    merged_provenance = dict(state.provenance or {})
    merged_provenance.update(provenance or {})
    merged_provenance.setdefault(
        "date", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    halo = model.halo
    doc = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "kind_version": int(model.model_version),
        "niseg_version": niseg.__version__,
        "classes": _to_jsonable(np.asarray(model.classes_)),
        "class_names": _to_jsonable(getattr(model, "class_names_", None)),
        "spatial_dims": int(model.spatial_dims),
        "n_channels": int(model.n_channels_),
        "halo": _to_jsonable(halo),
        "params": _to_jsonable(state.params),
        "state": _to_jsonable(state.state),
        "normalization": _to_jsonable(state.normalization or {}),
        "provenance": _to_jsonable(merged_provenance),
        "checksums": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }
    json_bytes = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False).encode("utf-8")

    with atomic_output(path, overwrite=overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_JSON_NAME, json_bytes)
            for name, data in members.items():
                zf.writestr(name, data)
    return Path(path)


def read_model_info(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate the ``model.json`` of a model file without building the model.

    Parameters
    ----------
    path : str or PathLike
        A ``.niseg`` file.

    Returns
    -------
    dict
        The parsed ``model.json``.

    Raises
    ------
    ValueError
        If the file is missing, not a zip, truncated, has unexpected members, or its JSON is
        invalid, of an unknown kind or of a newer format version.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from niseg.threshold import ThresholdSegmenter
    >>> model = ThresholdSegmenter().fit(np.random.default_rng(0).random((32, 32)))
    >>> out = save_model(model, pathlib.Path(tempfile.mkdtemp()) / "t.niseg")
    >>> read_model_info(out)["kind"]
    'smoothed-threshold'
    """
    info, _ = _open_model(path, read_members=False)
    return info


def load_model(path: str | os.PathLike) -> Any:
    """Load a model written by :func:`save_model`.

    Nothing in the file is unpickled: ``model.json`` is plain JSON, ``weights.skops`` is
    loaded only after every type it names has been checked against an allow-list of
    scikit-learn and NumPy types, and ``weights.safetensors`` holds plain arrays.

    Parameters
    ----------
    path : str or PathLike
        A ``.niseg`` file.

    Returns
    -------
    Segmenter
        The fitted model, with ``provenance_`` holding the recorded training provenance.

    Raises
    ------
    ValueError
        If the file cannot be read, fails validation or its checksums, is of an unknown kind
        or a newer format version, or its weights contain an untrusted type.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from niseg.threshold import ThresholdSegmenter
    >>> image = np.random.default_rng(0).random((32, 32))
    >>> model = ThresholdSegmenter().fit(image)
    >>> out = save_model(model, pathlib.Path(tempfile.mkdtemp()) / "t.niseg")
    >>> bool((load_model(out).predict(image) == model.predict(image)).all())
    True
    """
    info, members = _open_model(path, read_members=True)
    name = Path(path).name
    estimators = None
    tensors = None
    if _SKOPS_NAME in members:
        estimators = _load_skops(members[_SKOPS_NAME], name)
    if _SAFETENSORS_NAME in members:
        tensors = _load_safetensors(members[_SAFETENSORS_NAME], name)

    module_name, class_name = _MODEL_KINDS[info["kind"]].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if int(info["kind_version"]) > int(cls.model_version):
        raise ValueError(
            f"model file '{name}' holds a {info['kind']} model of version "
            f"{info['kind_version']}, newer than this niseg supports ({cls.model_version}); "
            "upgrade niseg"
        )
    state = ModelState(
        params=dict(info["params"]),
        state=dict(info["state"]),
        estimators=estimators,
        tensors=tensors,
        normalization=dict(info.get("normalization") or {}),
        provenance=dict(info.get("provenance") or {}),
    )
    try:
        model = cls.from_model_state(state)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"model file '{name}' is inconsistent: {exc}") from None
    model.provenance_ = state.provenance
    return model


# --------------------------------------------------------------------------------------------
# reading and validation


def _open_model(path: str | os.PathLike, *, read_members: bool) -> tuple[dict, dict[str, bytes]]:
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ValueError(f"cannot read model '{path}': no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            unexpected = sorted(set(names) - _ALLOWED_MEMBERS)
            if unexpected:
                raise ValueError(
                    f"model file '{name}' contains unexpected member '{unexpected[0]}'; "
                    "it was not written by niseg or has been altered"
                )
            if _JSON_NAME not in names:
                raise ValueError(f"model file '{name}' has no {_JSON_NAME}")
            if zf.getinfo(_JSON_NAME).file_size > _MAX_JSON_BYTES:
                raise ValueError(f"model file '{name}' has an oversized {_JSON_NAME}")
            raw = zf.read(_JSON_NAME)
            members = {}
            for member in zf.infolist():
                if member.file_size > _MAX_MEMBER_BYTES:
                    raise ValueError(f"model file '{name}' has an oversized {member.filename}")
            if read_members:
                members = {n: zf.read(n) for n in names if n != _JSON_NAME}
    except zipfile.BadZipFile:
        raise ValueError(
            f"cannot read model '{name}': it is not a niseg model file or it is truncated"
        ) from None
    except (zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise ValueError(f"cannot read model '{name}': {exc}") from None
    except RuntimeError as exc:  # e.g. encrypted members
        raise ValueError(f"cannot read model '{name}': {exc}") from None
    except Exception as exc:  # zlib.error and friends on corrupt compressed data
        if isinstance(exc, ValueError):
            raise
        raise ValueError(f"cannot read model '{name}': its data is corrupt ({exc})") from None

    try:
        info = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"model file '{name}' has an invalid {_JSON_NAME}") from None
    _validate_info(info, name)

    if read_members:
        checksums = info["checksums"]
        if set(checksums) != set(members):
            raise ValueError(
                f"model file '{name}' does not match its own list of weight files; "
                "it has been altered"
            )
        for member, data in members.items():
            if hashlib.sha256(data).hexdigest() != checksums[member]:
                raise ValueError(
                    f"model file '{name}' is corrupt: {member} does not match its checksum"
                )
    return info, members


def _refuse_constant(name: str) -> Any:
    # save_model never writes NaN or Infinity; a file holding them has been edited.
    raise json.JSONDecodeError(f"non-finite number {name}", name, 0)


_REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "kind": str,
    "kind_version": int,
    "niseg_version": str,
    "classes": list,
    "spatial_dims": int,
    "n_channels": int,
    "halo": (int, list),
    "params": dict,
    "state": dict,
    "checksums": dict,
}


def _validate_info(info: Any, name: str) -> None:
    if not isinstance(info, dict) or info.get("format") != _FORMAT_NAME:
        raise ValueError(f"model file '{name}' is not a niseg model file")
    for key, typ in _REQUIRED_KEYS.items():
        if key not in info:
            raise ValueError(f"model file '{name}' is missing '{key}' in {_JSON_NAME}")
        value = info[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ValueError(f"model file '{name}' has an invalid '{key}' in {_JSON_NAME}")
    halo = info["halo"] if isinstance(info["halo"], list) else [info["halo"]]
    if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 0 for h in halo):
        raise ValueError(f"model file '{name}' has an invalid 'halo' in {_JSON_NAME}")
    if info["format_version"] > FORMAT_VERSION:
        raise ValueError(
            f"model file '{name}' has format version {info['format_version']}, newer than "
            f"this niseg reads ({FORMAT_VERSION}); upgrade niseg"
        )
    if info["format_version"] < 1:
        raise ValueError(f"model file '{name}' has an invalid format version")
    if info["kind"] not in _MODEL_KINDS:
        known = ", ".join(sorted(_MODEL_KINDS))
        raise ValueError(
            f"model file '{name}' is of unknown kind '{info['kind']}' (known kinds: {known})"
        )
    if info["spatial_dims"] not in (2, 3) or info["n_channels"] < 1 or not info["classes"]:
        raise ValueError(f"model file '{name}' has invalid dimensions or classes")


def _load_skops(data: bytes, name: str) -> dict[str, Any]:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception:
        raise ValueError(f"model file '{name}' has unreadable weights") from None
    refused = [t for t in untrusted if not _is_trusted_type(t)]
    if refused:
        raise ValueError(
            f"model file '{name}' contains an object of untrusted type '{refused[0]}'; "
            "refusing to load it"
        )
    try:
        loaded = sio.loads(data, trusted=list(untrusted))
    except Exception:
        raise ValueError(f"model file '{name}' has unreadable weights") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"model file '{name}' has weights of an unexpected structure")
    return loaded


def _is_trusted_type(type_name: str) -> bool:
    return type_name in _TRUSTED_TYPES


def _dump_safetensors(tensors: Mapping[str, np.ndarray]) -> bytes:
    try:
        from safetensors.numpy import save
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "saving network weights needs the 'safetensors' package: pip install 'niseg[deep]'"
        ) from None
    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()})


def _load_safetensors(data: bytes, name: str) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValueError(
            f"model file '{name}' holds network weights, which need the 'safetensors' "
            "package: pip install 'niseg[deep]'"
        ) from None
    try:
        return dict(load(data))
    except Exception:
        raise ValueError(f"model file '{name}' has unreadable network weights") from None


def _to_jsonable(value: Any) -> Any:
    """Convert NumPy scalars/arrays and tuples to plain JSON types, recursively."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"cannot store the non-finite number {value} in a model file")
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store a {type(value).__name__} in a model file's JSON")

