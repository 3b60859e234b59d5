"""`niseg train --method unet` and `niseg predict` with U-Net models: tiny nets, few steps."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from html.parser import HTMLParser

import numpy as np
import pytest
import tifffile

torch = pytest.importorskip("torch")

from cli_helpers import assert_user_error, files_in, run
from niseg.deep import UNetSegmenter
from niseg.io import read_image, write_image
from niseg.models import load_model
from niseg.objects import postprocess
from niseg.simulate import brush_strokes
from test_no_torch import HIDE_TORCH

RUN = ("--method", "unet", "--patch", "32", "--epochs", "2", "--iterations-per-epoch", "3",
       "--augment", "light", "--jobs", "1", "--device", "cpu")
TINY = ("--depth", "1", "--base-channels", "4", *RUN)
API = {"depth": 1, "base_channels": 4, "patch_size": 32, "epochs": 2,
       "iterations_per_epoch": 3, "augment": "light", "device": "cpu", "n_threads": 1}


def bright_blocks(shape=(64, 64), seed=0, size=12):
    """Bright blocks of a checkerboard in Gaussian noise, and their mask; every slab of
    ``size`` rows or columns holds both classes, so every validation block can be scored."""
    rng = np.random.default_rng(seed)
    truth = (sum(np.indices(shape) // size) % 2).astype(np.uint8)
    image = (100 + 40 * truth + rng.normal(0, 10, shape)).astype(np.float32)
    return image, truth


def _data(tmp_path, name="a", shape=(64, 64), seed=0):
    image, truth = bright_blocks(shape, seed)
    axes = {"axes": "yx" if len(shape) == 2 else "zyx"}
    write_image(tmp_path / f"{name}.tif", image, axes)
    write_image(tmp_path / f"{name}_mask.tif", truth, axes)
    if len(shape) == 2:
        labels = brush_strokes(truth, fraction=0.1, width=3, seed=seed)
    else:
        labels = np.stack([brush_strokes(t, fraction=0.1, width=3, seed=seed + k)
                           for k, t in enumerate(truth)])
    write_image(tmp_path / f"{name}_labels.tif", labels.astype(np.uint8), axes)
    return image, truth, labels.astype(np.uint8)


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


def test_mask_round_trip_equals_api(tmp_path, capsys):
    image, truth, _ = _data(tmp_path)
    status, out, err = run(capsys, "train", tmp_path / "a.tif", "--mask", tmp_path / "a_mask.tif",
                           "-o", tmp_path / "m.niseg", "--seed", 3, *TINY)
    assert status == 0, err
    assert "2-D U-Net" in out and "6 iterations" in out
    # 20 px tiles are rounded up to the window step (16 px), with a warning.
    status, _, err = run(capsys, "predict", tmp_path / "m.niseg", tmp_path / "a.tif", "-o",
                         tmp_path / "pred.tif", "--proba-out", tmp_path / "p.tif",
                         "--uncertainty-out", tmp_path / "u.tif", "--tile", 20,
                         "--stats-out", tmp_path / "pred.json")
    assert status == 0, err
    assert "warning: --tile 20 is not a multiple" in err and "32 x 32" in err
    api = UNetSegmenter(random_state=3, **API).fit(image, masks=truth)
    pred, meta = read_image(tmp_path / "pred.tif")
    assert pred.dtype == np.uint8 and set(np.unique(pred)) <= {0, 1}
    assert meta["classes"] == ["background", "foreground"]
    proba, _ = read_image(tmp_path / "p.tif")
    assert proba.shape == (64, 64, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba, api.predict_proba(image), atol=1e-5)
    np.testing.assert_array_equal(pred, api.predict(image))
    unc, _ = read_image(tmp_path / "u.tif")
    np.testing.assert_allclose(unc, api.predict_uncertainty(image), atol=1e-5)
    pstats = json.loads((tmp_path / "pred.json").read_text())
    assert pstats["model_kind"] == "unet" and pstats["tile"] == [32, 32]
    assert pstats["device"] == "auto"
    model = load_model(tmp_path / "m.niseg")
    assert model.iterations_ == api.iterations_ == 6
    assert model.provenance_["training_inputs"][0]["mask_sha256"]


def test_labels_report_stats_and_progress(tmp_path, capsys, monkeypatch):
    import niseg.cli._train_unet as train_unet

    texts = []

    class _Recorder:
        def __init__(self, quiet, description):
            pass

        def __enter__(self):
            return lambda done, total, text=None: texts.append(text)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(train_unet, "_progress", _Recorder)
    _data(tmp_path)
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--labels",
                         tmp_path / "a_labels.tif", "-o", tmp_path / "m.niseg", "--report",
                         tmp_path / "r.html", "--stats-out", tmp_path / "s.json", "-q", *TINY)
    assert status == 0, err
    assert any(t and t.startswith("epoch 2/2: loss") and "val Dice" in t for t in texts), texts
    stats = json.loads((tmp_path / "s.json").read_text())
    assert {"classes", "iterations", "best_epoch", "best_val_dice", "stopped_because",
            "training_seconds", "config", "validation", "labelled_pixels", "history"} <= set(stats)
    assert stats["classes"] == [1, 2] and stats["iterations"] == 6
    assert stats["best_epoch"] in (1, 2) and stats["stopped_because"] == "epochs"
    assert 0 <= stats["best_val_dice"] <= 1
    assert stats["config"]["patch_size"] == [32, 32] and stats["config"]["depth"] == 1
    assert "patch (32, 32): given" in stats["config"]["rules"]
    assert stats["validation"]["source"] == "split" and stats["validation"]["gap"] == 9
    assert len(stats["history"]) == 2
    page = _Page()
    page.feed((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert {"Training data", "Labelled pixels per class", "Training curves", "Validation",
            "Network configuration", "Prediction of the training image"} <= set(page.headings)
    assert len(page.images) == 3 and all(s.startswith("data:image/png;base64,")
                                         for s in page.images)
    assert "gap of 9 px" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_init_fine_tunes_a_saved_model(tmp_path, capsys):
    image, truth, _ = _data(tmp_path)
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--mask", tmp_path / "a_mask.tif",
                         "-o", tmp_path / "m1.niseg", "-q", *TINY)
    assert status == 0, err
    first = load_model(tmp_path / "m1.niseg")
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--mask", tmp_path / "a_mask.tif",
                         "-o", tmp_path / "m2.niseg", "--init", tmp_path / "m1.niseg",
                         "--freeze-encoder-epochs", 1, "--seed", 1, "--stats-out",
                         tmp_path / "s.json", "-q", *RUN)
    assert status == 0, err
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["init"] == str(tmp_path / "m1.niseg")
    assert any("fine-tuning" in r for r in stats["config"]["rules"])
    second = load_model(tmp_path / "m2.niseg")
    api = UNetSegmenter(random_state=1, init=first, freeze_encoder_epochs=1,
                        **{k: v for k, v in API.items() if k not in ("depth", "base_channels")})
    api.fit(image, masks=truth)
    np.testing.assert_allclose(second.predict_proba(image), api.predict_proba(image), atol=1e-5)
    # The frozen first epoch leaves the encoder as it was only if it stays frozen; the decoder
    # moved in any case.
    w1, w2 = first.net_.state_dict(), second.net_.state_dict()
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)


def test_2d_stack_3d_volume_and_postprocessing(tmp_path, capsys):
    stack, _, _ = _data(tmp_path, "s", shape=(4, 40, 40))
    status, _, err = run(capsys, "train", tmp_path / "s.tif", "--mask", tmp_path / "s_mask.tif",
                         "-o", tmp_path / "m2.niseg", "--2d", "--stats-out",
                         tmp_path / "s2.json", "-q", *TINY)
    assert status == 0, err
    s2 = json.loads((tmp_path / "s2.json").read_text())
    assert s2["spatial_dims"] == 2 and s2["two_d"]
    status, _, err = run(capsys, "predict", tmp_path / "m2.niseg", tmp_path / "s.tif", "-o",
                         tmp_path / "raw.tif", "-q")
    assert status == 0, err
    raw, meta = read_image(tmp_path / "raw.tif")
    assert raw.shape == (4, 40, 40) and meta["axes"] == "zyx"
    model = load_model(tmp_path / "m2.niseg")
    np.testing.assert_array_equal(raw[2], model.predict(stack[2]))
    status, _, err = run(capsys, "predict", tmp_path / "m2.niseg", tmp_path / "s.tif", "-o",
                         tmp_path / "clean.tif", "--min-size", 30, "--fill-holes",
                         "--stats-out", tmp_path / "p.json", "-q")
    assert status == 0, err
    clean, _ = read_image(tmp_path / "clean.tif")
    expected = np.stack([postprocess(p, min_size=30, fill_holes=True) for p in raw])
    np.testing.assert_array_equal(clean, expected)
    pstats = json.loads((tmp_path / "p.json").read_text())
    assert pstats["postprocess"] == {"min_size": 30, "keep_largest": False, "fill_holes": True}
    assert pstats["class_stats"][1]["pixels"] == int((clean == 1).sum())

    volume, _, _ = _data(tmp_path, "v", shape=(32, 32, 32))
    status, _, err = run(capsys, "train", tmp_path / "v.tif", "--mask", tmp_path / "v_mask.tif",
                         "-o", tmp_path / "m3.niseg", "--validation", 0, "--stats-out",
                         tmp_path / "s3.json", "-q", *TINY)
    assert status == 0, err
    s3 = json.loads((tmp_path / "s3.json").read_text())
    assert s3["spatial_dims"] == 3 and s3["validation"]["source"] == "none"
    assert s3["best_epoch"] == 2 and s3["best_val_dice"] is None
    status, _, err = run(capsys, "predict", tmp_path / "m3.niseg", tmp_path / "v.tif", "-o",
                         tmp_path / "p3.tif", "--keep-largest", "--mirror", "-q")
    assert status == 0, err
    model3 = load_model(tmp_path / "m3.niseg")
    model3.mirror = True
    expected3 = postprocess(model3.predict(volume), keep_largest=True)
    np.testing.assert_array_equal(read_image(tmp_path / "p3.tif")[0], expected3)


def test_validation_block_without_foreground_still_scores(tmp_path, capsys):
    # A centred square: the 10 % slab at an image border holds no foreground to score.
    truth = np.zeros((64, 64), np.uint8)
    truth[16:48, 16:48] = 1
    image = (100 + 40 * truth + np.random.default_rng(0).normal(0, 10, truth.shape))
    write_image(tmp_path / "c.tif", image.astype(np.float32))
    write_image(tmp_path / "c_mask.tif", truth)
    status, _, err = run(capsys, "train", tmp_path / "c.tif", "--mask", tmp_path / "c_mask.tif",
                         "-o", tmp_path / "m.niseg", "--stats-out", tmp_path / "s.json", *TINY)
    assert status == 0, err
    stats = json.loads((tmp_path / "s.json").read_text())
    # no foreground to find there: 1 when none is predicted in the block, else 0
    scores = [row["val_dice"] for row in stats["history"]]
    assert all(v in (0.0, 1.0) for v in scores)
    smoothed = [row["val_dice_smoothed"] for row in stats["history"]]
    best = stats["best_epoch"]
    assert smoothed[best - 1] == max(smoothed) and stats["best_val_dice"] == scores[best - 1]
    assert load_model(tmp_path / "m.niseg").iterations_ == 6


def test_validation_pair(tmp_path, capsys):
    _data(tmp_path, "a", seed=0)
    _data(tmp_path, "b", seed=1)
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--mask", tmp_path / "a_mask.tif",
                         "--validation-pair", tmp_path / "b.tif", tmp_path / "b_mask.tif",
                         "-o", tmp_path / "m.niseg", "--stats-out", tmp_path / "s.json", "-q",
                         *TINY)
    assert status == 0, err
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["validation"]["source"] == "given"
    assert stats["validation_inputs"] == [{"image": str(tmp_path / "b.tif"),
                                           "mask": str(tmp_path / "b_mask.tif")}]
    assert stats["best_val_dice"] is not None


def test_user_errors_write_nothing(tmp_path, capsys):
    _data(tmp_path)
    small, small_truth = bright_blocks((24, 24))
    write_image(tmp_path / "small.tif", small)
    tifffile.imwrite(tmp_path / "small_mask.tif", small_truth)
    tiny, tiny_truth = bright_blocks((10, 10), size=4)
    write_image(tmp_path / "tiny.tif", tiny)
    tifffile.imwrite(tmp_path / "tiny_mask.tif", tiny_truth)
    three = bright_blocks()[1] + (np.arange(64)[:, None] > 60)
    tifffile.imwrite(tmp_path / "three.tif", three.astype(np.uint8))
    strokes3 = tifffile.imread(tmp_path / "a_labels.tif")
    strokes3[:2, :] = 3
    tifffile.imwrite(tmp_path / "labels3.tif", strokes3)
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--mask", tmp_path / "a_mask.tif",
                         "-o", tmp_path / "unet.niseg", "-q", *TINY)
    assert status == 0, err
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--mask", tmp_path / "a_mask.tif",
                         "-o", tmp_path / "rf.niseg", "--features", "fast", "--trees", 4, "-q")
    assert status == 0, err
    model = tmp_path / "m.niseg"
    mask = ("train", tmp_path / "a.tif", "--mask", tmp_path / "a_mask.tif", "-o", model)
    labels = ("train", tmp_path / "a.tif", "--labels", tmp_path / "labels3.tif", "-o", model)
    before = files_in(tmp_path)
    cases = [
        (("train", tmp_path / "small.tif", "--mask", tmp_path / "small_mask.tif", "-o", model,
          *TINY), ("small.tif", "24 x 24", "smaller than --patch 32")),
        (("train", tmp_path / "tiny.tif", "--mask", tmp_path / "tiny_mask.tif", "-o", model,
          "--method", "unet"), ("only 10 px",)),
        (("train", tmp_path / "a.tif", "--mask", tmp_path / "three.tif", "-o", model, *TINY),
         ("three.tif", "0, 1, 2", "binary")),
        ((*mask, *TINY, "--init", tmp_path / "missing.niseg"), ("--init", "does not exist")),
        ((*mask, *TINY, "--init", tmp_path / "rf.niseg"), ("--init", "pixel-classifier")),
        ((*labels, "--method", "unet", "--patch", "32", "--epochs", "1", "--init",
          tmp_path / "unet.niseg"), ("init model has 2 classes", "3 classes")),
        ((*mask, *TINY, "--trees", 5), ("--trees", "pixel classifier", "--method unet")),
        ((*mask, *TINY, "--select-features"), ("--select-features",)),
        ((*mask, "--epochs", 3), ("--epochs", "U-Net option", "--method rf")),
        ((*mask, "--method", "et", "--device", "cpu"), ("--device", "--method et")),
        ((*mask, "--validation-pair", tmp_path / "a.tif", tmp_path / "a_mask.tif"),
         ("--validation-pair", "U-Net option")),
        ((*mask, *TINY, "--validation", 0.2, "--validation-pair", tmp_path / "a.tif",
          tmp_path / "a_mask.tif"), ("--validation", "not both")),
        ((*mask, *TINY, "--loss", "l2"), ("--loss", "dice_ce")),
        ((*mask, *TINY, "--augment", "heavy"), ("--augment", "physics")),
        ((*mask, *TINY, "--data-counts", 3000), ("--data-counts", "--augment physics")),
        ((*mask, *TINY, "--augment", "physics", "--data-counts", 5),
         ("--data-counts", "above 20")),
        ((*mask, "--data-counts", 3000), ("--data-counts", "U-Net option")),
        ((*mask, *TINY, "--validation", 0.7), ("--validation", "0.5")),
        ((*mask, *TINY, "--epochs", 0), ("--epochs", "positive")),
        ((*mask, *TINY, "--class-weights", "equal"), ("--class-weights", "balanced")),
        ((*mask, *TINY, "--device", "tpu"), ("--device", "cpu, cuda, auto")),
        ((*mask, "--method", "svm"), ("--method", "unet")),
        (("predict", tmp_path / "rf.niseg", tmp_path / "a.tif", "-o", tmp_path / "p.tif",
          "--device", "cpu"), ("--device", "U-Net models only", "pixel-classifier")),
        (("predict", tmp_path / "rf.niseg", tmp_path / "a.tif", "-o", tmp_path / "p.tif",
          "--mirror"), ("--mirror",)),
        (("predict", tmp_path / "unet.niseg", tmp_path / "a.tif", "-o", tmp_path / "p.tif",
          "--min-size", -1), ("--min-size",)),
    ]
    if not torch.cuda.is_available():
        cases += [
            ((*mask, *TINY[:-1], "cuda"), ("--device cuda", "no CUDA GPU")),
            (("predict", tmp_path / "unet.niseg", tmp_path / "a.tif", "-o",
              tmp_path / "p.tif", "--device", "cuda"), ("--device cuda", "no CUDA GPU")),
        ]
    for args, words in cases:
        status, _, err = run(capsys, *args)
        assert_user_error(status, err, *words)
    assert files_in(tmp_path) == before


def test_without_torch_one_sentence(tmp_path, capsys):
    _data(tmp_path)
    status, _, err = run(capsys, "train", tmp_path / "a.tif", "--mask", tmp_path / "a_mask.tif",
                         "-o", tmp_path / "unet.niseg", "-q", *TINY)
    assert status == 0, err
    code = """
    from niseg.cli import main
    train = main(["train", "a.tif", "--mask", "a_mask.tif", "-o", "x.niseg", "--method",
                  "unet"])
    predict = main(["predict", "unet.niseg", "a.tif", "-o", "p.tif"])
    print("status", train, predict)
    """
    result = subprocess.run([sys.executable, "-c", HIDE_TORCH + textwrap.dedent(code)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            check=False)
    assert "status 2 2" in result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line]
    assert lines == ["error: niseg.deep needs PyTorch: pip install 'niseg[deep]'"] * 2
    assert not (tmp_path / "x.niseg").exists() and not (tmp_path / "p.tif").exists()


def test_data_counts_makes_physics_poisson_noise_real_counts(tmp_path, capsys):
    rng = np.random.default_rng(0)
    truth = (sum(np.indices((64, 64)) // 12) % 2).astype(np.uint8)
    transmission = (rng.poisson(3000 * (0.3 + 0.4 * truth)) / 3000).astype(np.float32)
    write_image(tmp_path / "t.tif", transmission, {"axes": "yx"})
    write_image(tmp_path / "m.tif", truth, {"axes": "yx"})
    model = tmp_path / "u.niseg"
    status, _out, err = run(capsys, "train", tmp_path / "t.tif", "--mask", tmp_path / "m.tif", "-o",
                           model, *TINY, "--augment", "physics", "--data-counts", 3000,
                           "--quiet")
    assert status == 0, err
    augment = load_model(model).augment_
    assert augment.poisson_units == "transmission" and augment.poisson_p > 0
    assert augment.poisson_data_counts == 3000.0
    assert augment.poisson_counts_range == (20.0, 3000.0)
