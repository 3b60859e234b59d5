"""`niseg train` and `niseg predict`: round trips, label formats, outputs and user errors."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import h5py
import numpy as np
import pytest
import tifffile

from cli_helpers import assert_user_error, files_in, run
from niseg.classify import PixelClassifier
from niseg.io import read_image, write_image
from niseg.models import load_model, save_model
from niseg.simulate import brush_strokes
from niseg.threshold import ThresholdSegmenter

FAST = ("--features", "fast", "--trees", "8", "--jobs", "2", "-q")


def two_textures(shape=(64, 64), seed=0):
    """Same mean, different roughness: only texture features separate the disc."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    centre = np.array(shape).reshape(-1, *([1] * len(shape))) / 2
    truth = (np.sqrt(((grid - centre) ** 2).sum(0)) < min(shape[-2:]) / 3).astype(np.uint8)
    image = 100 + rng.normal(0, 1, shape) * np.where(truth, 20.0, 3.0)
    return image.astype(np.float32), truth


def _data(tmp_path, name="a", seed=0, shape=(64, 64), pixel_size=None):
    image, truth = two_textures(shape, seed)
    if len(shape) == 2:
        labels = brush_strokes(truth, fraction=0.08, width=3, seed=seed)
    else:
        labels = np.stack([brush_strokes(t, fraction=0.08, width=3, seed=seed + k)
                           for k, t in enumerate(truth)])
    meta = {"axes": "yx" if len(shape) == 2 else "zyx"}
    if pixel_size:
        meta.update(pixel_size=pixel_size, unit="um")
    write_image(tmp_path / f"{name}.tif", image, meta)
    tifffile.imwrite(tmp_path / f"{name}_labels.tif", labels.astype(np.int32))  # as napari
    return image, truth, labels.astype(np.uint8)


def _api(images, labels=None, masks=None, seed=0, **kw):
    model = PixelClassifier(features="fast", n_estimators=8, n_jobs=2, random_state=seed, **kw)
    return model.fit(images, labels, masks=masks)


def test_train_predict_round_trip_equals_api(tmp_path, capsys):
    image, truth, labels = _data(tmp_path)
    status, out, err = run(capsys, "train", tmp_path / "a.tif", "--labels",
                           tmp_path / "a_labels.tif", "-o", tmp_path / "m.niseg", "--seed", 3,
                           "--stats-out", tmp_path / "train.json", *FAST[:-1])
    assert status == 0, err
    assert "wrote" in out and "samples per class" in out
    status, _, err = run(capsys, "predict", tmp_path / "m.niseg", tmp_path / "a.tif", "-o",
                         tmp_path / "pred.tif", "--proba-out", tmp_path / "p.tif",
                         "--uncertainty-out", tmp_path / "u.tif", "--tile", 32,
                         "--stats-out", tmp_path / "pred.json", "-q")
    assert status == 0, err
    api = _api(image, labels, seed=3)
    pred, meta = read_image(tmp_path / "pred.tif")
    assert pred.dtype == np.uint8 and set(np.unique(pred)) == {1, 2}
    np.testing.assert_array_equal(pred, api.predict(image))
    assert meta["classes"] == ["class 1", "class 2"]
    assert float(((pred == 2) == truth).mean()) > 0.9
    proba, pmeta = read_image(tmp_path / "p.tif")
    assert proba.dtype == np.float32 and proba.shape == (64, 64, 2) and pmeta["axes"] == "yxc"
    np.testing.assert_allclose(proba, api.predict_proba(image), atol=1e-6)
    np.testing.assert_allclose(proba.sum(-1), 1, atol=1e-5)
    unc, _ = read_image(tmp_path / "u.tif")
    assert unc.dtype == np.float32
    np.testing.assert_allclose(unc, api.predict_uncertainty(image), atol=1e-6)
    np.testing.assert_allclose(unc, 1 - np.abs(proba[..., 1] - proba[..., 0]), atol=1e-6)
    stats = json.loads((tmp_path / "train.json").read_text())
    assert {"classes", "samples_per_class", "feature_importances_top", "training_seconds",
            "features", "labelled_pixels", "stages", "spacing"} <= set(stats)
    assert stats["classes"] == [1, 2] and stats["n_features"] == 10 and stats["stages"] == 1
    assert stats["samples_per_class"] == {
        "1": int((labels == 1).sum()), "2": int((labels == 2).sum())}
    top = stats["feature_importances_top"]
    assert len(top) == 10 and top[0]["importance"] >= top[-1]["importance"]
    assert abs(sum(t["importance"] for t in top) - 1) < 1e-6
    pstats = json.loads((tmp_path / "pred.json").read_text())
    assert pstats["model_kind"] == "pixel-classifier" and pstats["classes"] == [1, 2]
    assert sum(c["pixels"] for c in pstats["class_stats"]) == 64 * 64
    assert pstats["class_stats"][1]["pixels"] == int((pred == 2).sum())
    assert 0 <= pstats["mean_uncertainty"] <= 1
    provenance = load_model(tmp_path / "m.niseg").provenance_
    assert provenance["training_inputs"][0]["sha256"] and provenance["seed"] == 3


def test_mask_model_predicts_binary(tmp_path, capsys):
    image, truth, _ = _data(tmp_path)
    write_image(tmp_path / "mask.tif", truth * 255)
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--mask", tmp_path / "mask.tif",
                         "-o", tmp_path / "m.niseg", *FAST)
    assert status == 0, err
    test_image, test_truth = two_textures(seed=5)
    write_image(tmp_path / "test.tif", test_image)
    status, _, err = run(capsys, "predict", tmp_path / "m.niseg", tmp_path / "test.tif",
                         "-o", tmp_path / "pred.tif", "-q")
    assert status == 0, err
    pred, meta = read_image(tmp_path / "pred.tif")
    assert pred.dtype == np.uint8 and set(np.unique(pred)) == {0, 1}
    assert meta["classes"] == ["background", "foreground"]
    assert float((pred == test_truth).mean()) > 0.8
    np.testing.assert_array_equal(pred, _api(image, masks=truth).predict(test_image))


def test_pairs(tmp_path, capsys):
    image_a, _, labels_a = _data(tmp_path, "a", seed=0)
    image_b, _, labels_b = _data(tmp_path, "b", seed=1)
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--labels",
                         tmp_path / "a_labels.tif", "--pair", tmp_path / "b.tif",
                         tmp_path / "b_labels.tif", "-o", tmp_path / "m.niseg",
                         "--stats-out", tmp_path / "s.json", *FAST)
    assert status == 0, err
    stats = json.loads((tmp_path / "s.json").read_text())
    assert [e["image"] for e in stats["inputs"]] == [str(tmp_path / "a.tif"),
                                                     str(tmp_path / "b.tif")]
    both = _api([image_a, image_b], [labels_a, labels_b])
    model = load_model(tmp_path / "m.niseg")
    np.testing.assert_array_equal(model.predict(image_b), both.predict(image_b))
    assert stats["samples_per_class"]["1"] == int((labels_a == 1).sum() + (labels_b == 1).sum())
    # Misused --pair, typos and stray arguments are refused in one sentence.
    for args, words in [
        (("--pair", tmp_path / "b.tif"), ("--pair needs two values",)),
        (("--tress", "5"), ("no such option: --tress",)),
        (("extra.tif",), ("unexpected argument",)),
    ]:
        status, _, err = run(capsys, "train", tmp_path / "a.tif", "--labels",
                             tmp_path / "a_labels.tif", "-o", tmp_path / "x.niseg", *args)
        assert_user_error(status, err, *words)
    status, _, err = run(capsys, "train", "--pair", tmp_path / "b.tif",
                         tmp_path / "b_labels.tif", tmp_path / "a.tif", "--labels",
                         tmp_path / "a_labels.tif", "-o", tmp_path / "x.niseg")
    assert_user_error(status, err, "IMAGE before any --pair")
    assert not (tmp_path / "x.niseg").exists()


def test_2d_slices_and_3d_volume(tmp_path, capsys):
    image, _, labels = _data(tmp_path, "v", shape=(5, 40, 40), pixel_size=(2.0, 1.0, 1.0))
    status, _, err = run(capsys, "train", tmp_path / "v.tif", "--labels",
                         tmp_path / "v_labels.tif", "-o", tmp_path / "m2.niseg", "--2d",
                         "--stats-out", tmp_path / "s2.json", *FAST)
    assert status == 0, err
    s2 = json.loads((tmp_path / "s2.json").read_text())
    assert s2["spatial_dims"] == 2 and s2["two_d"] and s2["spacing"] == [1.0, 1.0]
    status, _, err = run(capsys, "predict", tmp_path / "m2.niseg", tmp_path / "v.tif", "-o",
                         tmp_path / "p2.tif", "-q")
    assert status == 0, err
    pred2, meta = read_image(tmp_path / "p2.tif")
    assert pred2.shape == (5, 40, 40) and meta["axes"] == "zyx"
    slices = _api(list(image), list(labels), spacing=[1.0, 1.0])
    np.testing.assert_array_equal(pred2[3], slices.predict(image[3]))

    status, _, err = run(capsys, "train", tmp_path / "v.tif", "--labels",
                         tmp_path / "v_labels.tif", "-o", tmp_path / "m3.niseg",
                         "--stats-out", tmp_path / "s3.json", *FAST)
    assert status == 0, err
    s3 = json.loads((tmp_path / "s3.json").read_text())
    assert s3["spatial_dims"] == 3 and s3["spacing"] == [2.0, 1.0, 1.0]
    assert s3["n_features"] == 10
    status, _, err = run(capsys, "predict", tmp_path / "m3.niseg", tmp_path / "v.tif", "-o",
                         tmp_path / "p3.tif", "--tile", 16, "-q")
    assert status == 0, err
    volume = _api(image, labels, spacing=[2.0, 1.0, 1.0])
    np.testing.assert_array_equal(read_image(tmp_path / "p3.tif")[0], volume.predict(image))
    write_image(tmp_path / "plane.tif", image[2])
    status, _, err = run(capsys, "predict", tmp_path / "m3.niseg", tmp_path / "plane.tif",
                         "-o", tmp_path / "p.tif")
    assert_user_error(status, err, "is 2-D", "3-D")
    assert not (tmp_path / "p.tif").exists()


def _axistags(letters):
    return json.dumps({"axes": [{"key": k, "typeFlags": 1 if k == "c" else 2,
                                 "resolution": 0, "description": ""} for k in letters]})


def test_napari_and_ilastik_labels(tmp_path, capsys):
    image, _, labels = _data(tmp_path)
    with h5py.File(tmp_path / "export.h5", "w") as f:  # ilastik's "Export" of the labels
        ds = f.create_dataset("exported_data", data=labels.T[..., None])
        ds.attrs["axistags"] = _axistags("xyc")
    with h5py.File(tmp_path / "project.ilp", "w") as f:  # ilastik's labelled blocks
        group = f.create_group("PixelClassification/LabelSets/labels000")
        for i, (y0, y1) in enumerate([(0, 32), (32, 64)]):
            ds = group.create_dataset(f"block{i:04d}", data=labels[y0:y1, :, None])
            ds.attrs["blockSlice"] = f"[{y0}:{y1},0:64,0:1]".encode()
        f["Input Data/infos/lane0000/Raw Data/axistags"] = _axistags("yxc")
    predictions = []
    for name, source in [("napari", "a_labels.tif"), ("h5", "export.h5::/exported_data"),
                         ("ilp", "project.ilp")]:
        status, _, err = run(capsys, "train", tmp_path / "a.tif", "--labels",
                             f"{tmp_path / source}", "-o", tmp_path / f"{name}.niseg", *FAST)
        assert status == 0, (name, err)
        predictions.append(load_model(tmp_path / f"{name}.niseg").predict(image))
    np.testing.assert_array_equal(predictions[0], predictions[1])
    np.testing.assert_array_equal(predictions[0], predictions[2])


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.headings, self._in_h2 = [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def test_report_and_channels(tmp_path, capsys):
    image, truth, _ = _data(tmp_path)
    rgb = np.stack([image, 200 - image, np.full_like(image, 7.0)], -1)
    np.save(tmp_path / "rgb.npy", rgb)
    status, _, err = run(capsys, "train", tmp_path / "rgb.npy", "--axes", "yxc", "--labels",
                         tmp_path / "a_labels.tif", "-o", tmp_path / "m.niseg",
                         "--report", tmp_path / "r.html", "--stats-out", tmp_path / "s.json",
                         *FAST)
    assert status == 0, err
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["n_channels"] == 3 and stats["n_features"] == 30
    page = _Page()
    page.feed((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert {"Training data", "Labelled pixels per class", "Feature importances",
            "Autocontext stages", "Prediction of the training image"} <= set(page.headings)
    assert len(page.images) == 3 and all(s.startswith("data:image/png;base64,")
                                         for s in page.images)
    # The model takes colour images and refuses grayscale ones.
    status, _, err = run(capsys, "predict", tmp_path / "m.niseg", tmp_path / "rgb.npy",
                         "--axes", "yxc", "-o", tmp_path / "p.tif", "-q")
    assert status == 0, err
    assert float(((read_image(tmp_path / "p.tif")[0] == 2) == truth).mean()) > 0.9
    status, _, err = run(capsys, "predict", tmp_path / "m.niseg", tmp_path / "a.tif",
                         "-o", tmp_path / "q.tif")
    assert_user_error(status, err, "1 channel", "trained on 3")


def test_predict_threshold_model(tmp_path, capsys):
    image, truth = two_textures()
    bright = (truth * 50 + image / 10).astype(np.float32)
    write_image(tmp_path / "b.tif", bright)
    model = ThresholdSegmenter(sigma=1.0).fit(bright)
    save_model(model, tmp_path / "t.niseg")
    status, out, err = run(capsys, "predict", tmp_path / "t.niseg", tmp_path / "b.tif", "-o",
                           tmp_path / "p.tif", "--uncertainty-out", tmp_path / "u.tif")
    assert status == 0, err
    assert "foreground" in out
    pred, _ = read_image(tmp_path / "p.tif")
    np.testing.assert_array_equal(pred, model.predict(bright))
    assert float((pred == truth).mean()) > 0.99
    assert read_image(tmp_path / "u.tif")[0].shape == (64, 64)


def test_user_errors_write_nothing(tmp_path, capsys):
    image, truth, labels = _data(tmp_path)
    model = tmp_path / "m.niseg"
    base = ("train", tmp_path / "a.tif", "-o", model)
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    np.save(tmp_path / "nan.npy", np.where(truth, np.nan, image))
    tifffile.imwrite(tmp_path / "small.tif", labels[:60])
    tifffile.imwrite(tmp_path / "one.tif", (labels == 1).astype(np.uint8))
    tifffile.imwrite(tmp_path / "none.tif", np.zeros_like(labels))
    before = files_in(tmp_path)
    cases = [
        (("train", tmp_path / "broken.tif", "--labels", tmp_path / "a_labels.tif", "-o",
          model), ("broken.tif",)),
        ((*base, "--labels", tmp_path / "small.tif"), ("shape (60, 64)", "(64, 64)")),
        ((*base, "--labels", tmp_path / "one.tif"), ("only one class",)),
        ((*base, "--labels", tmp_path / "none.tif"), ("no labelled pixels",)),
        (("train", tmp_path / "nan.npy", "--labels", tmp_path / "a_labels.tif", "-o", model),
         ("NaN",)),
        (base, ("--labels", "--mask")),
        ((*base, "--labels", tmp_path / "a_labels.tif", "--mask", tmp_path / "one.tif"),
         ("exactly one",)),
        ((*base, "--labels", tmp_path / "a_labels.tif", "--method", "svm"), ("--method",)),
        ((*base, "--labels", tmp_path / "a_labels.tif", "--features", "{bad"),
         ("--features", "JSON")),
        ((*base, "--labels", tmp_path / "a_labels.tif", "--features", '{"filters": ["x"]}'),
         ("feature spec",)),
        (("predict", tmp_path / "missing.niseg", tmp_path / "a.tif", "-o",
          tmp_path / "p.tif"), ("missing.niseg",)),
        (("predict", tmp_path / "a_labels.tif", tmp_path / "a.tif", "-o", tmp_path / "p.tif"),
         ("a_labels.tif",)),
    ]
    for args, words in cases:
        status, _, err = run(capsys, *args)
        assert_user_error(status, err, *words)
    assert files_in(tmp_path) == before
    status, _, err = run(capsys, *base, "--labels", tmp_path / "a_labels.tif", *FAST)
    assert status == 0, err
    status, _, err = run(capsys, *base, "--labels", tmp_path / "a_labels.tif", *FAST)
    assert_user_error(status, err, "already exists")
    status, _, err = run(capsys, "predict", model, tmp_path / "nan.npy", "-o",
                         tmp_path / "p.tif")
    assert_user_error(status, err, "NaN")
    write_image(tmp_path / "p.tif", labels)
    status, _, err = run(capsys, "predict", model, tmp_path / "a.tif", "-o",
                         tmp_path / "q.tif", "--proba-out", tmp_path / "p.tif")
    assert_user_error(status, err, "already exists")
    assert not (tmp_path / "q.tif").exists()
    status, _, err = run(capsys, "predict", model, tmp_path / "a.tif", "-o", tmp_path / "a.tif")
    assert_user_error(status, err, "is an input")


def test_stages_and_feature_selection(tmp_path, capsys):
    _, truth, _ = _data(tmp_path)
    # Strokes across the whole image, so that the held-out stripe has both classes.
    rows = np.arange(64)[:, None] % 4 == 0
    tifffile.imwrite(tmp_path / "a_labels.tif", np.where(rows, truth + 1, 0).astype(np.uint8))
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--labels",
                         tmp_path / "a_labels.tif", "-o", tmp_path / "m.niseg", "--stages", 2,
                         "--select-features", "--stats-out", tmp_path / "s.json",
                         "--report", tmp_path / "r.html", *FAST)
    assert status == 0, err
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["stages"] == 2 and stats["halo"] == [104, 104]
    assert stats["context_method"] == "hgb"
    selection = stats["selection"]
    assert selection["chosen_k"] == len(stats["selected_features"]) == stats["n_features"]
    assert selection["k"][-1] == 10 and len(selection["dice"]) == len(selection["k"])
    page = _Page()
    page.feed((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "Feature selection" in page.headings
    assert len(page.images) == 4  # the selection curve besides the three others
    status, _, err = run(capsys, "predict", tmp_path / "m.niseg", tmp_path / "a.tif", "-o",
                         tmp_path / "p.tif", "-q")
    assert status == 0, err


def test_context_method(tmp_path, capsys):
    _data(tmp_path)
    base = ["train", tmp_path / "a.tif", "--labels", tmp_path / "a_labels.tif"]
    status, _, err = run(capsys, *base, "-o", tmp_path / "m.niseg", "--stages", 2,
                         "--context-method", "same", "--stats-out", tmp_path / "s.json",
                         *FAST)
    assert status == 0, err
    assert json.loads((tmp_path / "s.json").read_text())["context_method"] == "rf"
    status, _, err = run(capsys, *base, "-o", tmp_path / "n.niseg", "--stages", 2,
                         "--context-method", "svm", *FAST)
    assert_user_error(status, err, "--context-method must be one of")
    status, _, err = run(capsys, *base, "-o", tmp_path / "n.niseg", "--context-method", "et",
                         *FAST)
    assert_user_error(status, err, "give --stages 2 or more")
    assert not (tmp_path / "n.niseg").exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_bad_numbers(tmp_path, capsys, value):
    _data(tmp_path)
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--labels",
                         tmp_path / "a_labels.tif", "-o", tmp_path / "m.niseg", "--trees",
                         value)
    assert_user_error(status, err, "--trees")
