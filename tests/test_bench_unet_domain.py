"""Tests of benchmarks/bench_unet_domain.py's helpers: data, arithmetic, a tiny end-to-end run."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import bench_unet_domain as bench


def test_settings_full_quick_and_iterations():
    full = bench.settings(False)
    assert full.train_level in full.levels and len(full.levels) == 5
    assert set(full.train_scenes).isdisjoint(full.eval_scenes)
    assert full.iterations % full.epochs == 0
    quick = bench.settings(True)
    assert quick.levels == (300.0, 3000.0) and quick.shape == (128, 128)
    # Rounded up to whole epochs so every model runs exactly the same steps.
    assert bench.settings(False, 250).iterations == 256
    assert bench.settings(True, 3).iterations == 4
    with pytest.raises(ValueError, match="iterations"):
        bench.settings(False, 0)
    # Clean simulated training data applied to noisier measurements.
    clean = bench.settings(False, train_level=30000)
    assert clean.train_level == 30000.0 and clean.levels == full.levels
    with pytest.raises(ValueError, match="training level must be one of"):
        bench.settings(False, train_level=500)


def test_scene_is_flat_fielded_and_only_noise_changes():
    low, high = (bench.scene(4, c, (64, 64)) for c in (100.0, 10000.0))
    assert low["image"].dtype == np.float32
    np.testing.assert_array_equal(low["roots"], high["roots"])
    np.testing.assert_array_equal(low["clean"], high["clean"])
    assert low["roots"].any()
    # Transmission, not counts: the mean level does not move with the exposure.
    assert abs(low["image"].mean() - high["image"].mean()) < 0.01
    assert abs(high["image"].mean() - low["clean"].mean()) < 0.002
    # Poisson: noise std of counts/C is sqrt(T / C), ten times smaller at 100 x the counts.
    ratio = np.std(low["image"] - low["clean"]) / np.std(high["image"] - high["clean"])
    assert 8.5 < ratio < 11.5


def test_make_data_and_same_scenes():
    data = bench.make_data((1, 2), (300.0, 3000.0), (48, 48))
    assert list(data) == [300.0, 3000.0] and len(data[300.0]) == 2
    assert bench.same_scenes(data)
    assert not np.array_equal(data[300.0][0]["image"], data[3000.0][0]["image"])
    data[3000.0][1]["roots"] = 1 - data[3000.0][1]["roots"]
    assert not bench.same_scenes(data)


def test_contrast_to_noise_grows_as_sqrt_counts():
    cnr = {c: bench.contrast_to_noise([bench.scene(s, c, (64, 64)) for s in (0, 1)])
           for c in (100.0, 10000.0)}
    assert cnr[100.0] > 0
    assert 8.0 < cnr[10000.0] / cnr[100.0] < 12.0


def test_effective_counts_formula_on_a_ramp():
    image = np.tile(np.linspace(0.4, 0.8, 64, dtype=np.float32), (64, 1))
    x = image.astype(np.float64)
    low, high = np.quantile(x, [0.005, 0.995])
    t_rel = np.clip((x - low) / (high - low), 0, None).mean()
    expected = x.mean() / (x.mean() / 3000.0 + (high - low) ** 2 * t_rel / 20.0)
    got = bench.effective_counts([image], 64, 20.0, 3000.0)
    assert got == pytest.approx(expected, rel=1e-9)
    # Four patches of 32 on a ramp: each spans a quarter of the range, so more counts.
    assert bench.effective_counts([image], 32, 20.0, 3000.0) > got
    assert bench.effective_counts([image], 64, 1e7, 3000.0) == pytest.approx(3000.0, rel=1e-3)
    with pytest.raises(ValueError, match="patch"):
        bench.effective_counts([image], 128, 20.0, 3000.0)


def test_effective_counts_matches_the_augmentation():
    from niseg.deep._augment_noise import poisson_noise

    # A noiseless patch: all noise the augmentation adds is compared with the formula.
    clean = bench.scene(3, 3000.0, (64, 64))["clean"]
    n = 20.0
    g = torch.Generator().manual_seed(0)
    planes = torch.from_numpy(np.repeat(clean[None], 64, axis=0))
    noisy = poisson_noise(planes, torch.full((64,), n), g).numpy()
    measured = float(np.mean((noisy - clean[None]) ** 2))
    predicted_counts = bench.effective_counts([clean], 64, n, train_level=1e12)
    assert float(clean.mean()) / measured == pytest.approx(predicted_counts, rel=0.05)


def test_losses_mean_and_verdict_arithmetic():
    dice = {300.0: 0.30, 1000.0: 0.55, 3000.0: 0.70, 10000.0: 0.75}
    losses = bench.dice_losses(dice, 3000.0)
    assert losses == pytest.approx({300.0: 0.40, 1000.0: 0.15, 10000.0: 0.0})
    assert bench.mean_loss(dice, 3000.0) == pytest.approx(0.55 / 3)
    ratio, passed = bench.verdict(0.10, 0.25)
    assert ratio == pytest.approx(0.4) and passed
    ratio, passed = bench.verdict(0.15, 0.25)
    assert ratio == pytest.approx(0.6) and not passed
    assert bench.verdict(0.125, 0.25)[1]  # exactly half passes
    assert bench.verdict(0.0, 0.0) == (None, True)
    assert bench.verdict(0.01, 0.0) == (None, False)
    with pytest.raises(ValueError, match="training level"):
        bench.dice_losses(dice, 30000.0)
    with pytest.raises(ValueError, match="besides"):
        bench.mean_loss({3000.0: 0.7}, 3000.0)


def test_models_differ_only_in_augmentation():
    configs = bench.augment_configs()
    phys, default = configs["physics"], configs["default"]
    assert phys.rings_p == 0.0 and phys.poisson_p > 0 and phys.spots_p > 0
    assert phys.stripes_p > 0
    assert default.poisson_p == default.spots_p == default.stripes_p == default.rings_p == 0.0
    # Apart from the noise models the two augmentations are the same.
    assert phys.replace(poisson_p=0.0, spots_p=0.0, stripes_p=0.0) == default
    assert phys.poisson_units == "relative" and phys.poisson_data_counts is None
    # Real open-beam counts, topping up the 30000-count training data's own noise.
    real = bench.augment_configs(units="transmission", poisson_p=0.3)["physics"]
    assert real.poisson_units == "transmission" and real.poisson_data_counts == 30000.0
    assert real.poisson_counts_range == bench.TRANSMISSION_RANGE and real.poisson_p == 0.3
    wide = bench.augment_configs((2.0, 5000.0))["physics"]
    assert wide.poisson_counts_range == (2.0, 5000.0)
    assert wide.replace(poisson_counts_range=phys.poisson_counts_range) == phys
    with pytest.raises(ValueError, match="poisson_counts_range"):
        bench.augment_configs((0.1, 5.0))
    s = bench.settings(False)
    a, b = (bench.unet_params(s, c, 1) for c in (phys, default))
    assert a.pop("augment") is phys and b.pop("augment") is default
    assert a == b
    assert a["iterations_per_epoch"] * a["epochs"] == s.iterations
    assert (a["validation"], a["time_budget"], a["random_state"]) == (None, None, 1)
    assert a["n_threads"] == 2 and bench.unet_params(s, phys, 1, threads=1)["n_threads"] == 1


class _Oracle:
    """Predicts the truth of the scene it is given when the noise is low, nothing otherwise."""

    def __init__(self, data):
        self.truth = {id(s["image"]): (level, s["roots"]) for level, scenes in data.items()
                      for s in scenes}

    def predict(self, image):
        level, roots = self.truth[id(image)]
        return roots if level >= 1000 else np.zeros_like(roots)


def test_evaluate_pools_scenes_per_level():
    data = bench.make_data((0, 1), (300.0, 3000.0), (48, 48))
    assert bench.evaluate(_Oracle(data), data) == {300.0: 0.0, 3000.0: 1.0}

    class Half(_Oracle):
        def predict(self, image):  # scene 0 right, scene 1 missed entirely
            level, roots = self.truth[id(image)]
            return roots if image is data[level][0]["image"] else np.zeros_like(roots)

    n0, n1 = (int(data[300.0][i]["roots"].sum()) for i in (0, 1))
    got = bench.evaluate(Half(data), data)
    assert got[300.0] == pytest.approx(2 * n0 / (2 * n0 + n1))


def _run(name, dice, s):
    return {"model": name, "dice": dice, "losses": bench.dice_losses(dice, s.train_level),
            "mean_loss": bench.mean_loss(dice, s.train_level), "fit_s": 1.0, "load": 0.5}


def test_table_rows_verdict():
    s = bench.settings(False, train_level=3000)  # the middle of the levels below
    good = dict(zip(s.levels, (0.60, 0.68, 0.70, 0.72, 0.72)))
    bad = dict(zip(s.levels, (0.20, 0.50, 0.70, 0.72, 0.72)))
    rows, summary = bench.table_rows(s, {"physics": [_run("physics", good, s)],
                                         "default": [_run("default", bad, s)]},
                                     dict.fromkeys(s.levels, 1.0), [0])
    assert summary["mean_loss_physics"] == pytest.approx(0.12 / 4)
    assert summary["mean_loss_default"] == pytest.approx(0.70 / 4)
    assert summary["ratio"] == pytest.approx(0.12 / 0.70) and summary["passed"]
    verdict_row = next(r for r in rows if r[0].startswith("ratio"))
    assert verdict_row[2] == "0.17" and verdict_row[5] == "PASS"
    guard = next(r for r in rows if r[0].startswith("in-domain"))
    assert guard[2] == "+0.000" and guard[5] == "PASS" and summary["in_domain_kept"]
    assert sum(r[0].startswith("Dice at") for r in rows) == 5
    assert sum(r[0].startswith("loss at") for r in rows) == 4
    rows, summary = bench.table_rows(s, {"physics": [_run("physics", bad, s)],
                                         "default": [_run("default", good, s)]},
                                     dict.fromkeys(s.levels, 1.0), [0])
    assert not summary["passed"]
    assert next(r for r in rows if r[0].startswith("ratio"))[5] == "FAIL"
    # A physics model that learnt less in-domain: the ratio passes, the guard does not.
    weak = dict(zip(s.levels, (0.40, 0.45, 0.50, 0.52, 0.52)))
    rows, summary = bench.table_rows(s, {"physics": [_run("physics", weak, s)],
                                         "default": [_run("default", bad, s)]},
                                     dict.fromkeys(s.levels, 1.0), [0])
    assert summary["passed"] and summary["in_domain_gap"] == pytest.approx(-0.20)
    assert not summary["in_domain_kept"]
    assert next(r for r in rows if r[0].startswith("in-domain"))[5] == "FAIL"


def test_main_tiny_end_to_end(tmp_path, monkeypatch, capsys):
    tiny = replace(bench.QUICK, shape=(32, 32), eval_scenes=(10, 11), depth=1,
                   base_channels=4, patch_size=32, epochs=1, iterations=2)
    monkeypatch.setattr(bench, "QUICK", tiny)
    out = tmp_path / "domain.json"
    assert bench.main(["--quick", "--threads", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "same roots and noiseless transmission at every level: yes" in printed
    assert "| ratio physics / default" in printed
    result = json.loads(out.read_text())
    assert result["same_scenes"] and result["settings"]["iterations"] == 2
    assert result["threads"] == 1 and result["physics_augment"]["rings_p"] == 0.0
    for name in ("physics", "default"):
        (run,) = result["runs"][name]
        assert run["iterations"] == 2 and set(run["dice"]) == {"300", "3000"}
        assert all(0.0 <= d <= 1.0 for d in run["dice"].values())
        assert run["losses"]["300"] == pytest.approx(
            max(0.0, run["dice"]["3000"] - run["dice"]["300"]))


def test_main_trains_at_the_chosen_level(tmp_path, monkeypatch, capsys):
    tiny = replace(bench.QUICK, shape=(32, 32), depth=1, base_channels=4, patch_size=32,
                   epochs=1, iterations=1)
    monkeypatch.setattr(bench, "QUICK", tiny)
    out = tmp_path / "domain.json"
    assert bench.main(["--quick", "--threads", "1", "--train-level", "300",
                       "--poisson-units", "transmission", "--json", str(out)]) == 0
    assert "training [0] at 300 counts" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["settings"]["train_level"] == 300.0
    assert result["physics_augment"]["poisson_data_counts"] == 300.0
    for name in ("physics", "default"):
        (run,) = result["runs"][name]
        assert set(run["losses"]) == {"3000"}  # every level but the training level


def test_shift_losses_are_measured_against_in_domain_references():
    dice = {300.0: 0.2, 1000.0: 0.6, 3000.0: 0.9}
    assert bench.shift_losses(dice, {300.0: 0.3, 1000.0: 0.55}) == pytest.approx(
        {300.0: 0.1, 1000.0: 0.0})
    runs = {"physics": [{"dice": dice}], "default": [{"dice": {**dice, 300.0: 0.1,
                                                               1000.0: 0.5}}]}
    rows, summary = bench.oracle_rows(bench.settings(False), runs, [{300.0: 0.3, 1000.0: 0.55}],
                                      "1.0")
    # physics: (0.1 + 0) / 2 = 0.05; default: (0.2 + 0.05) / 2 = 0.125; ratio 0.4
    assert summary["shift_loss_physics"] == pytest.approx(0.05)
    assert summary["shift_loss_default"] == pytest.approx(0.125)
    assert summary["shift_ratio"] == pytest.approx(0.4) and summary["shift_passed"]
    assert rows[-1][5] == "PASS" and rows[0][2] == "0.300"
