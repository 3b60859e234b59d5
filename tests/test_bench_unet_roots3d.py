"""Tests of benchmarks/bench_unet_roots3d.py's helpers on tiny volumes (no timing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import bench_unet_roots3d as bench


def test_slice_positions_are_evenly_spaced_bin_centres():
    assert bench.slice_positions(64) == [8, 24, 40, 56]
    assert bench.slice_positions(32, 4) == [4, 12, 20, 28]
    assert bench.slice_positions(10, 3) == [1, 5, 8]
    assert bench.slice_positions(5, 5) == [0, 1, 2, 3, 4]
    for bad in (0, 6):
        with pytest.raises(ValueError, match="n_slices"):
            bench.slice_positions(5, bad)


def test_labels_only_on_the_chosen_slices():
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 3, size=(12, 6, 7)).astype(np.uint8)
    slices = [2, 7, 9]
    labels = bench.slice_labels(truth, slices)
    assert labels.dtype == np.uint8 and labels.shape == truth.shape
    np.testing.assert_array_equal(labels[slices], truth[slices])
    others = bench.unlabelled_slices(12, slices)
    assert others.tolist() == [i not in slices for i in range(12)]
    assert not labels[others].any()
    # Every voxel of a chosen slice is labelled: dense slices, not strokes.
    assert np.all(labels[slices] > 0)


def test_root_dice_arithmetic_and_slice_selection():
    roots = np.zeros((4, 5, 5), np.uint8)
    roots[:, 2, 1:4] = 1  # 3 root voxels per slice, 12 in all
    predicted = np.ones(roots.shape, np.uint8)
    predicted[:2, 2, 1:4] = 2  # slices 0, 1: all 3 found
    predicted[2, 2, 1] = 2  # slice 2: 1 of 3 found
    predicted[3, 0, 0] = 2  # slice 3: one false positive, nothing found
    # tp = 7, fp = 1, fn = 5: 2 * 7 / (14 + 1 + 5)
    assert bench.root_dice(predicted, roots) == pytest.approx(14 / 20)
    keep = bench.unlabelled_slices(4, [0, 1])
    # slices 2, 3 only: tp = 1, fp = 1, fn = 5
    assert bench.root_dice(predicted, roots, keep) == pytest.approx(2 / 8)
    # Soil (1) is not counted as root.
    assert bench.root_dice(np.ones_like(predicted), roots) == 0.0


def test_verdict_needs_a_strictly_higher_mean():
    assert bench.verdict([0.8], 0.7) == "PASS"
    assert bench.verdict([0.9, 0.6], 0.7) == "PASS"  # mean 0.75
    assert bench.verdict([0.9, 0.4], 0.7) == "FAIL"  # mean 0.65
    assert bench.verdict([0.7], 0.7) == "FAIL"


def test_unet_params_split_iterations_into_epochs():
    full = bench.unet_params(3, iterations=600, time_budget=6.0)
    assert (full["epochs"], full["iterations_per_epoch"]) == (12, 50)
    assert full["spatial_dims"] == 3 and full["patch_size"] == (32, 32, 32)
    assert (full["depth"], full["base_channels"], full["batch_size"]) == (3, 8, 4)
    assert full["validation"] is None and full["loss"] == "dice_ce"
    assert full["class_weights"] is None and full["augment"] == "default"
    assert (full["random_state"], full["n_threads"], full["time_budget"]) == (3, 2, 6.0)
    quick = bench.unet_params(0, iterations=12, time_budget=0.5)
    assert (quick["epochs"], quick["iterations_per_epoch"]) == (1, 12)
    odd = bench.unet_params(0, iterations=120, time_budget=1.0)
    assert (odd["epochs"], odd["iterations_per_epoch"]) == (3, 40)
    assert full["mirror"] is True
    wide = bench.unet_params(0, iterations=120, base=16, patch=(48, 48, 48), augment="light",
                             mirror=False)
    assert (wide["base_channels"], wide["patch_size"], wide["augment"], wide["mirror"]) == (
        16, (48, 48, 48), "light", False)


def test_sampler_patches_always_hold_labelled_slices():
    labels = bench.slice_labels(np.ones((32, 40, 40), np.uint8) + 1, [4, 12, 20, 28])
    labels[12, :5, :5] = 1  # a few soil voxels, so that two classes are present
    coverage = bench.sampler_coverage(labels, (16, 16, 16), n_patches=250)
    assert coverage["with_labels"] == 1.0
    # Slices 8 apart: any 16 consecutive slices hold exactly two labelled ones.
    assert coverage["labelled_share"] == pytest.approx(2 / 16)


def test_table_rows_report_both_models():
    unets = [{"seed": s, "dice_test": d, "dice_unlabelled": d - 0.05, "fit_s": 100.0,
              "predict_s": 5.0, "iterations": 600, "planned_iterations": 600,
              "stopped_because": "epochs", "load": 2.0} for s, d in ((0, 0.8), (1, 0.7))]
    forest = {"dice_test": 0.72, "dice_unlabelled": 0.7, "fit_s": 60.0, "predict_s": 20.0,
              "load": 2.5}
    params = bench.unet_params(0, iterations=600, time_budget=6.0)
    rows = bench.table_rows(unets, forest, {"with_labels": 1.0, "labelled_share": 0.125},
                            params, (64, 128, 128), 100.0, [8, 24, 40, 56], 21.4)
    assert rows[0][2] == "0.750 (0.800, 0.700)" and rows[0][3] == "0.720"
    assert rows[0][5] == "PASS" and rows[0][6] == "2.5"
    assert "patch 32x32x32" in rows[0][0] and "seeds [0, 1]" in rows[0][0]
    assert rows[1][2] == "0.700 (0.750, 0.650)"
    assert rows[3][2] == "600 / 600 (epochs); 600 / 600 (epochs)"
    assert rows[4][2] == "100.0 % / 12.5 %"
    assert "warm-up" in rows[5][1] and rows[5][2] == "21"


def test_main_quick_on_a_tiny_volume(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(bench, "QUICK_SHAPE", (16, 32, 32))
    monkeypatch.setattr(bench, "QUICK_PATCH", (16, 16, 16))
    monkeypatch.setattr(bench, "QUICK_ITERATIONS", 2)
    monkeypatch.setattr(bench, "BASE_CHANNELS", 4)
    monkeypatch.setattr(bench, "SAMPLED_PATCHES", 20)
    monkeypatch.setattr(bench, "classifier_params", lambda: {
        "features": "fast", "n_estimators": 5, "n_jobs": 1, "random_state": 0})
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--counts", "1000", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "root Dice, test volume" in printed and "wall time" in printed
    result = json.loads(out.read_text())
    assert result["shape"] == [16, 32, 32] and result["slices"] == [2, 6, 10, 14]
    (unet,) = result["unet"]
    assert unet["iterations"] == unet["planned_iterations"] == 2
    assert unet["stopped_because"] == "epochs"
    for run in (unet, result["classifier"]):
        assert 0.0 <= run["dice_test"] <= 1.0 and 0.0 <= run["dice_unlabelled"] <= 1.0
    # At 1000 counts the roots are clear: even 5 trees on the fast features find them.
    assert result["classifier"]["dice_test"] > 0.5
    assert result["sampler"]["with_labels"] == 1.0 and result["warm_up_s"] > 0
