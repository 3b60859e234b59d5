"""Smoke tests of benchmarks/bench_batch.py's helpers (tiny images, no cluster)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import bench_batch

from niseg.batch import Recipe, run_recipe_serial


def test_inputs_recipe_and_digests(tmp_path):
    paths, truth = bench_batch.make_inputs(tmp_path / "in", 2, 64)
    assert [p.name for p in paths] == ["img000.tif", "img001.tif"]
    assert truth.shape == (64, 64) and set(np.unique(truth)) == {0, 1}
    model = bench_batch.train_model(paths[0], truth, tmp_path / "m.niseg")
    recipe = Recipe.from_yaml(bench_batch.RECIPE.format(model=model))
    assert [s.name for s in recipe.steps] == ["classify", "postprocess", "measure", "write"]
    run_recipe_serial(recipe, tmp_path / "in", tmp_path / "a")
    run_recipe_serial(recipe, tmp_path / "in", tmp_path / "b")
    first = bench_batch.digests(tmp_path / "a")
    assert set(first) == {"img000.tif", "img000_objects.tif", "img000_objects.csv",
                          "img001.tif", "img001_objects.tif", "img001_objects.csv"}
    assert first == bench_batch.digests(tmp_path / "b")
    (tmp_path / "b" / "img001.tif").write_bytes(b"changed")
    assert first != bench_batch.digests(tmp_path / "b")
