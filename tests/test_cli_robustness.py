"""Tests of `niseg robustness`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_user_error, files_in, run


def test_robustness_counts_sweep(tmp_path, capsys):
    status, out, err = run(capsys, "robustness", "--n", "6", "--counts", "1,1000", "--size", "48",
                           "--figure", tmp_path / "dice.png", "--stats-out", tmp_path / "r.json",
                           "--seed", "2")
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("1 counts: in ")
    assert lines[1].startswith("1000 counts: in 100 % of 6 realizations Dice >= 0.9")
    stats = json.loads((tmp_path / "r.json").read_text())
    low, high = stats["runs"]
    assert high["fraction_meeting"] == 1.0 and low["fraction_meeting"] < 0.5
    assert len(high["scores"]) == 6 and stats["parameters"]["seed"] == 2
    assert (tmp_path / "dice.png").read_bytes()[:4] == b"\x89PNG"
    # Same seed, same scores.
    status, _, _ = run(capsys, "robustness", "--n", "6", "--counts", "1,1000", "--size", "48",
                       "--stats-out", tmp_path / "r.json", "--overwrite", "--seed", "2", "-q")
    assert status == 0
    again = json.loads((tmp_path / "r.json").read_text())
    np.testing.assert_array_equal(again["runs"][0]["scores"], low["scores"])


def test_robustness_other_options(capsys):
    status, out, err = run(capsys, "robustness", "--n", "3", "--size", "48", "--scenario",
                           "cupping", "--method", "li", "--criterion", "iou:0.5", "--sigma",
                           "1")
    assert status == 0, err
    assert "IoU >= 0.5" in out


@pytest.mark.parametrize("args, words", [
    (["--criterion", "f1:0.9"], ["criterion"]),
    (["--scenario", "ct"], ["scenario"]),
    (["--method", "magic"], ["method"]),
    (["--counts", "-5"], ["--counts"]),
    (["--n", "0"], ["n must"]),
    (["--foreground", "grey"], ["foreground"]),
])
def test_robustness_user_errors(tmp_path, capsys, args, words):
    status, _, err = run(capsys, "robustness", "--size", "32", "--n", "2",
                         "--stats-out", tmp_path / "s.json", *args)
    assert_user_error(status, err, *words)
    assert files_in(tmp_path) == set()


def test_robustness_figure_with_names():
    from niseg.report import robustness_figure

    fig = robustness_figure([np.array([0.5, 0.95]), np.array([0.99])], threshold=0.9,
                            names=["low", "high"], metric="iou")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["low: 50 % >= 0.9", "high: 100 % >= 0.9"]
    assert fig.axes[0].get_xlabel() == "IoU"
    with pytest.raises(ValueError, match="names"):
        robustness_figure([np.array([0.5])], threshold=0.9, names=["a", "b"])
