"""The CNN spot detector: shipped model quality, cleaning, CLI, model file, determinism."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cli_helpers import assert_user_error, run
from niseg.deep import CNNSpotDetector, train_spot_cnn
from niseg.deep import _spots as spots_module
from niseg.deep._spots import (
    SHIPPED_SPOT_MODEL,
    network_input,
    shipped_spot_detector,
)
from niseg.io import read_image, write_image
from niseg.models import load_model, read_model_info, save_model
from niseg.preprocess import clean_spots, detect_spots
from niseg.simulate import simulate_spots
from niseg.threshold import ThresholdSegmenter

torch.set_num_threads(1)

TINY = {"base_channels": 4, "iterations": 4, "batch_size": 2, "patch": 32}


@pytest.fixture(scope="module")
def sim():
    return simulate_spots(size=256, counts=1000.0, seed=5)


@pytest.fixture(scope="module")
def tiny():
    train = simulate_spots(size=64, counts=300.0, density=0.01, seed=2)
    return CNNSpotDetector(**TINY).fit(train.raw, train.mask), train


def _precision_recall(truth, found):
    tp = np.count_nonzero(truth & found)
    return tp / max(np.count_nonzero(found), 1), tp / max(np.count_nonzero(truth), 1)


def test_shipped_model_is_small_loads_and_finds_spots(sim):
    assert SHIPPED_SPOT_MODEL.stat().st_size < 500_000
    assert read_model_info(SHIPPED_SPOT_MODEL)["kind"] == "spot-cnn"
    model = shipped_spot_detector()
    assert 0.0 < model.threshold_ < 1.0
    # The test image's seed is not one the model was trained on.
    assert 5 not in model.provenance_["image_seeds"]
    truth = sim.mask > 0
    precision, recall = _precision_recall(truth, model.predict(sim.raw))
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    bright = model.detect(sim.raw, polarity="bright")
    precision, recall = _precision_recall(sim.mask == 1, bright)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    # Polarity is decided per spot, so large dark spots are not split.
    dark = sim.mask == 2
    assert not (bright & dark).any()
    found_dark = model.detect(sim.raw, polarity="dark")
    assert np.count_nonzero(found_dark & dark) >= 0.9 * np.count_nonzero(dark)
    assert not (found_dark & (sim.mask == 1)).any()
    np.testing.assert_array_equal(found_dark | bright, model.predict(sim.raw))


def test_clean_spots_cnn_reduces_rmse_and_keeps_other_pixels(sim):
    raw = np.round(sim.raw).astype(np.uint16)
    cleaned, mask = clean_spots(raw, method="cnn", polarity="both", return_mask=True)
    assert cleaned.dtype == np.uint16

    def rmse(a):
        return float(np.sqrt(np.mean((a.astype(float) - sim.clean) ** 2)))

    assert rmse(raw) > 10 * rmse(cleaned)
    np.testing.assert_array_equal(cleaned[~mask], raw[~mask])
    np.testing.assert_array_equal(mask, detect_spots(raw, method="cnn", polarity="both"))


def test_detect_spots_takes_a_user_detector_and_checks_its_type(tiny, sim):
    model, _ = tiny
    image = sim.raw[:64, :64]
    np.testing.assert_array_equal(
        detect_spots(image, method="cnn", polarity="dark", detector=model, max_area=10**6),
        model.detect(image, polarity="dark"))
    with pytest.raises(TypeError, match="CNNSpotDetector"):
        detect_spots(image, method="cnn", detector=object())
    with pytest.raises(ValueError, match="'knn' and 'cnn'"):
        detect_spots(image, method="auto", detector=model)


def test_input_normalization_ignores_camera_gain(sim):
    base = network_input(sim.raw)[0]
    scaled = network_input(sim.raw * 7.0)[0]
    np.testing.assert_allclose(scaled, base, atol=2e-3)
    # Noise units: the bulk of the normalized input has a spread near 1 at any exposure.
    for counts in (100.0, 10000.0):
        values = network_input(simulate_spots(size=128, counts=counts, seed=1).raw)[0]
        spread = 1.4826 * np.median(np.abs(values - np.median(values)))
        assert 0.3 < spread < 1.5


def test_tiled_prediction_matches_one_pass(tiny, monkeypatch):
    model, _ = tiny
    image = simulate_spots(size=(100, 90), counts=500.0, seed=3).raw
    values = network_input(image)[0]
    whole = spots_module._NetOnInput(model.net_).predict_proba(values)[..., 0]
    monkeypatch.setattr(spots_module, "_TILE", 32)
    tiled = model.predict_proba(image)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_model_round_trip(tiny, tmp_path):
    model, train = tiny
    path = save_model(model, tmp_path / "spots.niseg", provenance={"note": "test"})
    assert read_model_info(path)["kind"] == "spot-cnn"
    loaded = load_model(path)
    assert isinstance(loaded, CNNSpotDetector)
    assert loaded.threshold_ == model.threshold_ and loaded.iterations_ == 4
    assert loaded.get_params() == model.get_params()
    assert loaded.provenance_["note"] == "test"
    np.testing.assert_array_equal(loaded.predict_proba(train.raw), model.predict_proba(train.raw))


def test_training_is_deterministic_and_seeded():
    kwargs = dict(n_images=2, n_validation=1, size=48, iterations=3, **{
        k: v for k, v in TINY.items() if k != "iterations"})
    a = train_spot_cnn(seed=3, **kwargs)
    b = train_spot_cnn(seed=3, **kwargs)
    c = train_spot_cnn(seed=4, **kwargs)
    for key, value in a.net_.state_dict().items():
        assert torch.equal(value, b.net_.state_dict()[key])
    assert a.threshold_ == b.threshold_ and a.loss_curve_ == b.loss_curve_
    assert any(not torch.equal(v, c.net_.state_dict()[k])
               for k, v in a.net_.state_dict().items())
    assert a.provenance_["image_seeds"] == b.provenance_["image_seeds"]
    assert len(a.provenance_["image_seeds"]) == 3
    assert all(50.0 <= v <= 20000.0 for v in a.provenance_["counts"])


def test_validation_chooses_a_threshold(tiny):
    _, train = tiny
    model = CNNSpotDetector(**TINY).fit([train.raw], [train.mask],
                                        validation=([train.raw], [train.mask]))
    assert model.threshold_ in np.round(np.arange(0.05, 0.951, 0.05), 2)


@pytest.mark.parametrize(("params", "words"), [
    ({"patch": 30}, "multiple of 4"),
    ({"depth": 7}, "depth"),
    ({"loss": "hinge"}, "loss"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"iterations": 0}, "iterations"),
])
def test_bad_parameters_are_refused(params, words, tiny):
    _, train = tiny
    with pytest.raises(ValueError, match=words):
        CNNSpotDetector(**{**TINY, **params}).fit(train.raw, train.mask)


def test_bad_training_data_and_unfitted_use_are_refused(tiny):
    _, train = tiny
    with pytest.raises(ValueError, match="has shape"):
        CNNSpotDetector(**TINY).fit(train.raw, train.mask[:10])
    with pytest.raises(ValueError, match="no spot"):
        CNNSpotDetector(**TINY).fit(train.raw, np.zeros_like(train.mask))
    with pytest.raises(ValueError, match="at least 64"):
        CNNSpotDetector(**{**TINY, "patch": 64}).fit(train.raw[:40], train.mask[:40])
    with pytest.raises(ValueError, match="not fitted"):
        CNNSpotDetector().predict(train.raw)
    with pytest.raises(ValueError, match="polarity"):
        tiny[0].detect(train.raw, polarity="up")
    with pytest.raises(ValueError, match="counts_range"):
        train_spot_cnn(counts_range=(100.0, 10.0))


# ------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def image_file(tmp_path_factory, sim):
    path = tmp_path_factory.mktemp("cli") / "raw.tif"
    write_image(path, np.round(sim.raw).astype(np.uint16), {"axes": "yx"})
    return path


def test_cli_method_cnn_cleans_like_the_library(tmp_path, image_file, capsys):
    raw = read_image(image_file)[0]
    out, stats = tmp_path / "clean.tif", tmp_path / "stats.json"
    status, stdout, err = run(capsys, "clean-spots", image_file, "-o", out, "--method", "cnn",
                              "--stats-out", stats)
    assert status == 0, err
    assert "spot pixels" in stdout
    np.testing.assert_array_equal(read_image(out)[0], clean_spots(raw, method="cnn"))
    assert '"model": "shipped"' in stats.read_text()


def test_cli_user_model_and_its_errors(tmp_path, image_file, tiny, capsys):
    model = copy.deepcopy(tiny[0])
    # An untrained net flags large areas, which are slow to fill; a high threshold keeps
    # the test fast and still tells the user's model from the shipped one.
    model.threshold_ = 0.9
    path = save_model(model, tmp_path / "mine.niseg")
    out = tmp_path / "c.tif"
    status, _, err = run(capsys, "clean-spots", image_file, "-o", out, "--method", "cnn",
                         "--model", path, "--quiet")
    assert status == 0, err
    raw = read_image(image_file)[0]
    np.testing.assert_array_equal(read_image(out)[0],
                                  clean_spots(raw, method="cnn", detector=model))
    status, _, err = run(capsys, "clean-spots", image_file, "-o", tmp_path / "d.tif",
                         "--method", "cnn", "--model", tmp_path / "missing.niseg")
    assert_user_error(status, err, "missing.niseg")
    status, _, err = run(capsys, "clean-spots", image_file, "-o", tmp_path / "d.tif",
                         "--model", path)
    assert_user_error(status, err, "--model", "--method cnn")
    other = save_model(ThresholdSegmenter().fit(np.random.default_rng(0).random((16, 16))),
                       tmp_path / "t.niseg")
    status, _, err = run(capsys, "clean-spots", image_file, "-o", tmp_path / "d.tif",
                         "--method", "cnn", "--model", other)
    assert_user_error(status, err, "smoothed-threshold", "spot-cnn")
    assert not (tmp_path / "d.tif").exists()


def test_method_cnn_without_torch_says_what_to_install(tmp_path):
    code = textwrap.dedent("""
        import importlib.abc, sys
        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Hide())
        import numpy as np
        from niseg.preprocess import detect_spots
        try:
            detect_spots(np.ones((16, 16)), method="cnn")
        except ImportError as exc:
            print(exc)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, cwd=tmp_path, timeout=120)
    assert "method 'cnn' needs PyTorch: pip install 'niseg[deep]'" in result.stdout, \
        result.stderr
