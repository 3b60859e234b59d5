"""Tests for niseg.models: the Segmenter protocol and the safe ``.niseg`` model file."""

from __future__ import annotations

import collections
import datetime as dt
import functools
import hashlib
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

import niseg
from niseg import models
from niseg.models import (
    FORMAT_VERSION,
    ModelState,
    Segmenter,
    file_sha256,
    load_model,
    model_kinds,
    read_model_info,
    register_model_kind,
    save_model,
)
from niseg.threshold import ThresholdSegmenter

TEST_KIND = "test-tiny-logistic"


# --------------------------------------------------------------------------------------------
# helpers and test-only model kinds


def _bimodal(shape, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.uint8)
    truth[tuple(slice(s // 4, 3 * s // 4) for s in shape)] = 1
    return (truth * 3.0 + rng.normal(0, 1, shape)).astype(np.float32), truth


class TinyLogistic:
    """A test model kind: logistic regression on the normalised pixel value.

    It keeps a scikit-learn estimator (written with skops) and arrays (written as safetensors).
    """

    model_kind = TEST_KIND
    model_version = 2
    halo = 0
    n_channels_ = 1

    def __init__(self, *, C=1.0):
        self.C = C

    @property
    def spatial_dims(self):
        return self.spatial_dims_

    def fit(self, images, labels=None, *, masks=None):
        image = np.asarray(images, np.float64)
        self.spatial_dims_ = image.ndim
        self.norm_ = np.array([image.mean(), image.std()], np.float64)
        self.lut_ = np.arange(12, dtype=np.float32).reshape(3, 4)
        keep = labels != 0
        self.clf_ = LogisticRegression(C=self.C).fit(self._features(image)[keep.ravel()],
                                                     labels[keep])
        self.classes_ = self.clf_.classes_
        return self

    def _features(self, image):
        return ((np.asarray(image, np.float64) - self.norm_[0]) / self.norm_[1]).reshape(-1, 1)

    def predict_proba(self, image):
        p = self.clf_.predict_proba(self._features(image)).astype(np.float32)
        return p.reshape(*np.shape(image), -1)

    def predict(self, image):
        return self.classes_[np.argmax(self.predict_proba(image), axis=-1)]

    def to_model_state(self):
        return ModelState(
            params={"C": self.C},
            state={"spatial_dims_": self.spatial_dims_},
            estimators={"clf": self.clf_},
            tensors={"norm": self.norm_, "lut": self.lut_},
            normalization={"mean": float(self.norm_[0]), "std": float(self.norm_[1])},
            provenance={"seed": 3, "iterations": 7},
        )

    @classmethod
    def from_model_state(cls, state):
        model = cls(**state.params)
        model.spatial_dims_ = int(state.state["spatial_dims_"])
        model.clf_ = state.estimators["clf"]
        model.norm_ = state.tensors["norm"]
        model.lut_ = state.tensors["lut"]
        model.classes_ = model.clf_.classes_
        model.normalization_ = state.normalization
        return model


class Untrusted:
    """Stands for any class a model file must not be allowed to build."""

    def __init__(self):
        self.value = 1


class _Payload:
    """A pickle payload that would create ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture
def tiny_kind(monkeypatch):
    # setitem first so that monkeypatch removes the kind again after the test.
    monkeypatch.setitem(models._MODEL_KINDS, TEST_KIND, "placeholder:Placeholder")
    register_model_kind(TEST_KIND, f"{__name__}:TinyLogistic")
    return TEST_KIND


@pytest.fixture(scope="module")
def image_2d():
    return _bimodal((40, 44), seed=1)


@pytest.fixture
def saved(tmp_path, image_2d):
    image, _ = image_2d
    model = ThresholdSegmenter(sigma=1.5).fit(image)
    return save_model(model, tmp_path / "model.niseg"), model


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write_zip(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _edited(src, dst, edit=None, extra=None, raw_json=None):
    """Copy a model file, editing its model.json (a function) and adding/replacing members."""
    members = _members(src)
    if raw_json is not None:
        members["model.json"] = raw_json
    elif edit is not None:
        info = json.loads(members["model.json"])
        edit(info)
        members["model.json"] = json.dumps(info).encode()
    members.update(extra or {})
    return _write_zip(dst, members)


def _with_weights(src, dst, payload):
    """A model file carrying ``payload`` as weights.skops with a correct checksum."""

    def edit(info):
        info["checksums"] = {"weights.skops": hashlib.sha256(payload).hexdigest()}

    return _edited(src, dst, edit=edit, extra={"weights.skops": payload})


# --------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize(
    "ndim, sigma, training, foreground",
    [
        (2, 1.5, "unsupervised", "bright"),
        (2, 2.0, "unsupervised", "dark"),
        (2, (0.5, 2.0), "masks", "bright"),
        (2, 1.0, "masks", "dark"),
        (2, 1.0, "labels", "bright"),
        (3, 1.0, "unsupervised", "bright"),
        (3, (0.0, 1.0, 2.5), "masks", "dark"),
        (3, 0.7, "labels", "bright"),
    ],
)
def test_threshold_round_trip(tmp_path, ndim, sigma, training, foreground):
    shape = (36, 40) if ndim == 2 else (10, 16, 18)
    image, truth = _bimodal(shape, seed=ndim)
    model = ThresholdSegmenter(sigma=sigma, foreground=foreground)
    if training == "masks":
        model.fit(image, masks=truth if foreground == "bright" else 1 - truth)
    elif training == "labels":
        labels = np.zeros(shape, np.uint16)
        labels[truth == 1] = 5
        labels[(truth == 0) & (np.indices(shape)[-1] % 3 == 0)] = 9
        labels[..., 1::2] = 0
        model.fit(image, labels)
    else:
        model.fit(image)
    path = save_model(model, tmp_path / "m.niseg")
    assert path == tmp_path / "m.niseg" and path.is_file()
    loaded = load_model(path)
    assert isinstance(loaded, ThresholdSegmenter) and isinstance(loaded, Segmenter)
    test_image, _ = _bimodal(shape, seed=10 + ndim)
    np.testing.assert_array_equal(loaded.predict(test_image), model.predict(test_image))
    np.testing.assert_array_equal(loaded.predict_proba(test_image), model.predict_proba(test_image))
    assert loaded.predict(test_image).dtype == model.predict(test_image).dtype
    assert loaded.threshold_ == model.threshold_ and loaded.scale_ == model.scale_
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.classes_.dtype == model.classes_.dtype
    assert loaded.halo == model.halo and loaded.spatial_dims == ndim
    assert loaded.bright_class_ == model.bright_class_
    assert np.array_equal(loaded.sigma, sigma)
    assert loaded.foreground == foreground and loaded.method == "auto"
    assert loaded.fitted_with_ == model.fitted_with_
    assert set(_members(path)) == {"model.json"}


def test_read_model_info(tmp_path, image_2d):
    image, _ = image_2d
    model = ThresholdSegmenter(sigma=(1.0, 2.0)).fit(image)
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    path = save_model(
        model, tmp_path / "m.niseg", provenance={"inputs": {"a.tif": "ab12"}, "seed": 4}
    )
    after = dt.datetime.now(dt.timezone.utc)
    info = read_model_info(path)
    assert info["format"] == "niseg-model"
    assert info["format_version"] == FORMAT_VERSION == 1
    assert info["kind"] == "smoothed-threshold"
    assert info["kind_version"] == ThresholdSegmenter.model_version
    assert info["niseg_version"] == niseg.__version__
    assert info["classes"] == [0, 1]
    assert info["class_names"] is None
    assert info["halo"] == [4, 8]
    assert info["spatial_dims"] == 2 and info["n_channels"] == 1
    assert info["params"] == {"sigma": [1.0, 2.0], "method": "auto", "foreground": "bright"}
    assert info["state"]["threshold_"] == model.threshold_
    assert info["normalization"] == {}
    assert info["checksums"] == {}
    provenance = info["provenance"]
    assert provenance["inputs"] == {"a.tif": "ab12"} and provenance["seed"] == 4
    date = dt.datetime.fromisoformat(provenance["date"])
    assert date.tzinfo is not None and before <= date <= after
    assert load_model(path).provenance_ == provenance


def test_provenance_is_merged_and_date_can_be_given(tmp_path, tiny_kind, image_2d):
    image, truth = image_2d
    model = TinyLogistic().fit(image, truth + 1)
    path = save_model(
        model, tmp_path / "m.niseg", provenance={"seed": 11, "date": "2024-01-02T03:04:05+00:00"}
    )
    info = read_model_info(path)
    assert info["provenance"] == {"seed": 11, "iterations": 7, "date": "2024-01-02T03:04:05+00:00"}
    assert info["kind"] == TEST_KIND and info["kind_version"] == 2
    assert info["classes"] == [1, 2] and info["halo"] == 0
    assert info["normalization"] == {"mean": model.norm_[0], "std": model.norm_[1]}


def test_skops_and_safetensors_round_trip(tmp_path, tiny_kind, image_2d):
    assert model_kinds()[TEST_KIND] == f"{__name__}:TinyLogistic"
    image, truth = image_2d
    model = TinyLogistic(C=0.5).fit(image, truth + 1)
    path = save_model(model, tmp_path / "m.niseg")
    members = _members(path)
    assert set(members) == {"model.json", "weights.skops", "weights.safetensors"}
    info = read_model_info(path)
    assert info["checksums"] == {
        name: hashlib.sha256(members[name]).hexdigest()
        for name in ("weights.skops", "weights.safetensors")
    }
    loaded = load_model(path)
    assert isinstance(loaded, TinyLogistic) and loaded.C == 0.5
    assert isinstance(loaded.clf_, LogisticRegression)
    np.testing.assert_array_equal(loaded.clf_.coef_, model.clf_.coef_)
    np.testing.assert_array_equal(loaded.norm_, model.norm_)
    assert loaded.norm_.dtype == np.float64
    np.testing.assert_array_equal(loaded.lut_, model.lut_)
    assert loaded.lut_.dtype == np.float32 and loaded.lut_.shape == (3, 4)
    np.testing.assert_array_equal(loaded.predict_proba(image), model.predict_proba(image))
    np.testing.assert_array_equal(loaded.predict(image), model.predict(image))
    assert (loaded.predict(image) == truth + 1).mean() > 0.85
    assert loaded.normalization_ == info["normalization"]
    assert loaded.provenance_["iterations"] == 7


def test_register_model_kind_rejects_bad_target():
    with pytest.raises(ValueError, match="module:ClassName"):
        register_model_kind("x", "no_colon_here")


def test_file_sha256(tmp_path):
    data = os.urandom(3000)
    (tmp_path / "f.bin").write_bytes(data)
    assert file_sha256(tmp_path / "f.bin", chunk_size=7) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# saving: refusals and nothing left behind


def test_existing_output_refused_without_overwrite(saved, image_2d):
    path, _ = saved
    original = path.read_bytes()
    other = ThresholdSegmenter(sigma=3.0).fit(image_2d[0])
    with pytest.raises(FileExistsError, match="already exists"):
        save_model(other, path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(path.parent)) == [path.name]
    save_model(other, path, overwrite=True)
    assert load_model(path).sigma == 3.0
    assert sorted(os.listdir(path.parent)) == [path.name]


def test_failed_write_leaves_nothing(tmp_path, tiny_kind, image_2d, monkeypatch):
    image, truth = image_2d
    model = TinyLogistic().fit(image, truth + 1)
    real_writestr = zipfile.ZipFile.writestr

    def failing_writestr(self, name, data, *args, **kwargs):
        if str(getattr(name, "filename", name)).startswith("weights"):
            raise OSError("disk full")
        return real_writestr(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_writestr)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, tmp_path / "m.niseg")
    assert os.listdir(tmp_path) == []


def test_unsaveable_models_leave_nothing(tmp_path, image_2d):
    with pytest.raises(ValueError, match="has not been fitted"):
        save_model(ThresholdSegmenter(), tmp_path / "m.niseg")
    with pytest.raises(TypeError, match="not a registered niseg model kind"):
        save_model(LogisticRegression(), tmp_path / "m.niseg")
    model = ThresholdSegmenter().fit(image_2d[0])
    with pytest.raises(ValueError, match="non-finite"):
        save_model(model, tmp_path / "m.niseg", provenance={"dice": float("nan")})
    with pytest.raises(ValueError, match="does not exist"):
        save_model(model, tmp_path / "missing" / "m.niseg")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------------
# loading: damaged and foreign files


def test_truncated_file(saved, tmp_path):
    path, _ = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.niseg"
    cut.write_bytes(data[: len(data) // 2])
    for reader in (load_model, read_model_info):
        with pytest.raises(ValueError, match="cut.niseg"):
            reader(cut)


def test_random_bytes(tmp_path):
    path = tmp_path / "random.niseg"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="random.niseg.*not a niseg model file"):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_model(tmp_path / "absent.niseg")
    with pytest.raises(ValueError, match="no such file"):
        read_model_info(tmp_path)


def test_corrupt_compressed_member(saved, tmp_path):
    path, _ = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        member = zf.getinfo("model.json")
    # Flip bytes inside the compressed data of model.json (after its local header).
    start = member.header_offset + 30 + len(member.filename) + 5
    for i in range(start, start + 20):
        data[i] ^= 0xFF
    broken = tmp_path / "broken.niseg"
    broken.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="broken.niseg"):
        load_model(broken)


def test_zip_without_model_json(tmp_path):
    path = _write_zip(tmp_path / "empty.niseg", {"weights.skops": b"x"})
    with pytest.raises(ValueError, match="empty.niseg' has no model.json"):
        load_model(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda i: i.pop("kind"), "missing 'kind' in model.json"),
        (lambda i: i.pop("checksums"), "missing 'checksums'"),
        (lambda i: i.update(format_version="1"), "invalid 'format_version'"),
        (lambda i: i.update(format_version=True), "invalid 'format_version'"),
        (lambda i: i.update(format_version=1.0), "invalid 'format_version'"),
        (lambda i: i.update(classes="0,1"), "invalid 'classes'"),
        (lambda i: i.update(params=[]), "invalid 'params'"),
        (lambda i: i.update(format="something-else"), "is not a niseg model file"),
        (lambda i: i.update(kind="mystery"), "unknown kind 'mystery'.*smoothed-threshold"),
        (lambda i: i.update(format_version=FORMAT_VERSION + 1), "format version 2, newer"),
        (lambda i: i.update(format_version=0), "invalid format version"),
        (lambda i: i.update(spatial_dims=4), "invalid dimensions or classes"),
        (lambda i: i.update(classes=[]), "invalid dimensions or classes"),
    ],
)
def test_invalid_model_json(saved, tmp_path, edit, message):
    path, _ = saved
    bad = _edited(path, tmp_path / "bad.niseg", edit=edit)
    for reader in (read_model_info, load_model):
        with pytest.raises(ValueError, match=f"bad.niseg.*{message}"):
            reader(bad)


@pytest.mark.parametrize(
    "raw", [b"{not json", b"\xff\xfe\x00", b"[1, 2, 3]", b'"model"', b"null"]
)
def test_model_json_not_an_object(saved, tmp_path, raw):
    path, _ = saved
    bad = _edited(path, tmp_path / "bad.niseg", raw_json=raw)
    with pytest.raises(ValueError, match="bad.niseg' (has an invalid model.json|is not a niseg)"):
        read_model_info(bad)


def test_newer_kind_version_refused(saved, tmp_path):
    path, _ = saved
    bad = _edited(path, tmp_path / "bad.niseg", edit=lambda i: i.update(kind_version=2))
    assert read_model_info(bad)["kind_version"] == 2
    with pytest.raises(ValueError, match="smoothed-threshold model of version 2, newer.*upgrade"):
        load_model(bad)


@pytest.mark.parametrize(
    "edit",
    [
        lambda i: i["state"].pop("threshold_"),
        lambda i: i["state"].update(bright_class_=2),
        lambda i: i["state"].update(scale_=0.0),
        lambda i: i["state"].update(spatial_dims_=4),
        lambda i: i["state"].update(classes_dtype="not-a-dtype"),
        lambda i: i["params"].pop("sigma"),
        lambda i: i["params"].update(sigma=[1.0, 2.0, 3.0]),
    ],
)
def test_inconsistent_state_refused(saved, tmp_path, edit):
    path, _ = saved
    bad = _edited(path, tmp_path / "bad.niseg", edit=edit)
    with pytest.raises(ValueError, match="bad.niseg' is inconsistent"):
        load_model(bad)


@pytest.mark.parametrize("key, value", [("threshold_", "NaN"), ("scale_", "Infinity")])
def test_non_finite_numbers_in_model_json_refused(saved, tmp_path, key, value):
    # save_model never writes NaN or Infinity (allow_nan=False), so a file holding them has been
    # altered; a NaN level would silently label every pixel as background.
    path, _ = saved
    info = json.loads(_members(path)["model.json"])
    info["state"][key] = 0.123456789
    raw = json.dumps(info).replace("0.123456789", value).encode()
    bad = _edited(path, tmp_path / "bad.niseg", raw_json=raw)
    with pytest.raises(ValueError, match="bad.niseg"):
        load_model(bad)


def test_extra_member_refused(saved, tmp_path):
    path, _ = saved
    bad = _edited(
        path, tmp_path / "bad.niseg", extra={"payload.pkl": pickle.dumps({"a": 1})}
    )
    for reader in (read_model_info, load_model):
        with pytest.raises(ValueError, match="unexpected member 'payload.pkl'"):
            reader(bad)


def test_member_not_listed_in_checksums_refused(saved, tmp_path):
    path, _ = saved
    bad = _edited(path, tmp_path / "bad.niseg", extra={"weights.skops": sio.dumps({"a": 1})})
    with pytest.raises(ValueError, match="does not match its own list of weight files"):
        load_model(bad)


def test_listed_member_missing_refused(saved, tmp_path):
    path, _ = saved

    def edit(info):
        info["checksums"] = {"weights.safetensors": "0" * 64}

    bad = _edited(path, tmp_path / "bad.niseg", edit=edit)
    with pytest.raises(ValueError, match="does not match its own list of weight files"):
        load_model(bad)


def test_skops_checksum_mismatch_refused(tmp_path, tiny_kind, image_2d):
    image, truth = image_2d
    path = save_model(TinyLogistic().fit(image, truth + 1), tmp_path / "m.niseg")
    other = sio.dumps({"clf": LogisticRegression()})
    bad = _edited(path, tmp_path / "bad.niseg", extra={"weights.skops": other})
    with pytest.raises(ValueError, match="bad.niseg' is corrupt: weights.skops does not match"):
        load_model(bad)


def test_safetensors_checksum_mismatch_refused(tmp_path, tiny_kind, image_2d):
    image, truth = image_2d
    path = save_model(TinyLogistic().fit(image, truth + 1), tmp_path / "m.niseg")
    members = _members(path)
    tampered = bytearray(members["weights.safetensors"])
    tampered[-1] ^= 0x01
    bad = _edited(path, tmp_path / "bad.niseg", extra={"weights.safetensors": bytes(tampered)})
    with pytest.raises(ValueError, match="weights.safetensors does not match its checksum"):
        load_model(bad)


def test_unreadable_safetensors_refused(saved, tmp_path):
    path, _ = saved
    junk = b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}"

    def edit(info):
        info["checksums"] = {"weights.safetensors": hashlib.sha256(junk).hexdigest()}

    bad = _edited(path, tmp_path / "bad.niseg", edit=edit, extra={"weights.safetensors": junk})
    with pytest.raises(ValueError, match="unreadable network weights"):
        load_model(bad)


# --------------------------------------------------------------------------------------------
# loading never runs code from the file


def test_pickle_disguised_as_skops_never_runs(saved, tmp_path):
    path, _ = saved
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    # The payload really is live: unpickling it would create the marker.
    pickle.loads(payload)
    assert marker.exists()
    marker.unlink()
    bad = _with_weights(path, tmp_path / "bad.niseg", payload)
    with pytest.raises(ValueError, match="bad.niseg' has unreadable weights"):
        load_model(bad)
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj, type_name",
    [
        (Untrusted(), f"{__name__}.Untrusted"),
        (collections.Counter("abc"), "collections.Counter"),
        (functools.partial(int, "7"), "builtins.int|functools.partial"),
    ],
)
def test_untrusted_skops_type_refused(saved, tmp_path, obj, type_name):
    path, _ = saved
    bad = _with_weights(path, tmp_path / "bad.niseg", sio.dumps({"x": obj}))
    with pytest.raises(ValueError, match=f"untrusted type '({type_name})'"):
        load_model(bad)


def _skops_calling(module, function, args):
    """A hand-written skops file whose list node names ``module.function`` as its type.

    skops builds a list node as ``type(items)``, so trusting the type name means calling it.
    """

    def text(value):
        return {
            "__class__": "str",
            "__module__": "builtins",
            "__loader__": "JsonNode",
            "content": json.dumps(value),
            "is_json": True,
            "__id__": id(value),
        }

    schema = {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": {
            "x": {
                "__class__": function,
                "__module__": module,
                "__loader__": "ListNode",
                "content": [text(a) for a in args],
                "__id__": 1,
            }
        },
        "key_types": {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "ListNode",
            "content": [
                {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode",
                 "__id__": 2}
            ],
            "__id__": 3,
        },
        "__id__": 4,
        "protocol": 2,
        "_skops_version": "0.16.0",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


def test_skops_cannot_call_functions_reexported_by_sklearn(saved, tmp_path):
    # sklearn.utils._testing imports subprocess.check_output; its name starts with "sklearn."
    # but it is a shell, not an estimator type.
    path, _ = saved
    marker = tmp_path / "pwned"
    payload = _skops_calling("sklearn.utils._testing", "check_output", ["touch", str(marker)])
    bad = _with_weights(path, tmp_path / "bad.niseg", payload)
    try:
        with pytest.raises(ValueError, match="untrusted type 'sklearn.utils._testing"):
            load_model(bad)
    finally:
        assert not marker.exists(), "loading the model file ran a command from it"
