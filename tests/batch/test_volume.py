"""Chunked runs: refusals of steps that cannot run chunk by chunk, and chunk-exact results.

Every chunk-aware step is run chunk by chunk (chunk sizes that do not divide the shape) and
compared with the same recipe applied to the whole array in memory, in 2D and 3D.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from niseg.batch import Recipe, RecipeError, apply_recipe, run_volume
from niseg.io import read_image, write_image


def _recipe(*steps: str, chunks: str = "16") -> Recipe:
    body = "".join(f"  - {s}\n" for s in steps)
    return Recipe.from_yaml(f"niseg_recipe: 1\nname: test\nsteps:\n  - read: {{chunks: "
                            f"{chunks}}}\n{body}")


def _smooth(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), 2.0).astype(np.float32)


def _run(inproc, tmp_path: Path, recipe: Recipe, image: np.ndarray, axes: str, name="v",
         metadata=None):
    path = write_image(tmp_path / f"{name}.zarr", image, {"axes": axes, **(metadata or {})})
    report = run_volume(recipe, path, tmp_path / "out", client=inproc)
    assert report.failed == [] and report.done == [name]
    return report, tmp_path / "out"


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("step, words", [
    ("normalize: {open_beam: ob.tif}", "normalize the projections first"),
    ("clean_spots: {method: auto}", "noise of the whole frame"),
    ("clean_spots: {method: baseline, threshold: 5, max_area: 9}", "max_area"),
    ("threshold: {method: otsu}", "fit: global"),
    ("threshold: {method: local, block_size: 11}", "method 'local'"),
    ("threshold: {method: hysteresis, low: 1, high: 2}", "method 'hysteresis'"),
    ("threshold: {method: manual, value: 1, fill_holes: true}", "fill_holes"),
    ("threshold: {method: manual, value: 1, background: 20}", "background"),
    ("cluster", "train a model"),
])
def test_chunked_recipes_refuse_steps_that_are_not_chunk_aware(tmp_path, step, words):
    from niseg.io import write_image as write

    write(tmp_path / "ob.tif", np.ones((4, 4), np.float32))
    segment = "" if step.startswith(("threshold", "cluster")) else \
        "  - threshold: {method: manual, value: 1}\n"
    text = (f"niseg_recipe: 1\nsteps:\n  - read: {{chunks: 16}}\n  - {step}\n{segment}")
    path = tmp_path / "r.yaml"
    path.write_text(text)
    from niseg.batch import load_recipe

    with pytest.raises(RecipeError, match="line 4") as info:
        load_recipe(path)
    assert words in str(info.value) and "read chunks" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("step, words", [
    ("postprocess: {fill_holes: true}", "global by nature"),
    ("postprocess: {keep_largest: true}", "global by nature"),
    ("label: {split: true}", "watershed"),
    ("write: {suffix: .tif}", "suffix: .zarr"),
])
def test_chunked_recipes_refuse_global_post_steps(step, words):
    with pytest.raises(RecipeError, match="line 6") as info:
        _recipe("threshold: {method: manual, value: 1}", step)
    assert words in str(info.value)


def test_chunked_recipes_refuse_different_connectivities_and_file_mode_multiscale():
    with pytest.raises(RecipeError, match="same connectivity"):
        _recipe("threshold: {method: manual, value: 1}",
                "postprocess: {min_size: 3, connectivity: 1}", "label: {connectivity: 2}")
    with pytest.raises(RecipeError, match="multiscale needs suffix .zarr"):
        Recipe.from_yaml("niseg_recipe: 1\nsteps: [threshold, write: {multiscale: true}]")
    # Without chunks the same steps are fine (whole files in memory).
    Recipe.from_yaml("niseg_recipe: 1\nsteps: [threshold, postprocess: {fill_holes: true}]")


def test_chunks_must_fit_the_input(inproc, tmp_path):
    recipe = _recipe("threshold: {method: manual, value: 0.5}", chunks="[8, 8]")
    path = write_image(tmp_path / "v.zarr", _smooth((10, 12, 14)), {"axes": "zyx"})
    report = run_volume(recipe, path, tmp_path / "out", client=inproc)
    assert report.done == [] and len(report.failed) == 1
    assert "read chunks holds 2 values but" in report.failed[0][2]


# ----------------------------------------------------------------------- chunk-exactness


@pytest.mark.parametrize("shape, axes, chunks", [((37, 45), "yx", "16"),
                                                 ((20, 23, 26), "zyx", "[11, 13, 14]")])
def test_threshold_postprocess_label_measure_equal_the_in_memory_result(
        inproc, tmp_path, shape, axes, chunks):
    image = _smooth(shape, seed=1)
    level = float(np.quantile(image, 0.65))
    recipe = _recipe(f"threshold: {{method: manual, value: {level}}}",
                     "postprocess: {min_size: 6}", "label", "measure",
                     "write: {suffix: .zarr}", chunks=chunks)
    meta = {"pixel_size": [0.5] * len(shape), "unit": "mm"}
    report, out = _run(inproc, tmp_path, recipe, image, axes, metadata=meta)
    memory = apply_recipe(recipe, image, {"axes": axes, **meta}, {})
    seg, seg_meta = read_image(out / "v.zarr")
    objects, _ = read_image(out / "v_objects.zarr")
    np.testing.assert_array_equal(seg, memory.segmentation)
    np.testing.assert_array_equal(objects, memory.objects)
    assert objects.max() >= 3  # several objects, some crossing chunk faces
    assert seg_meta["classes"] == ["background", "foreground"]
    assert seg_meta["pixel_size"] == (0.5,) * len(shape) and seg_meta["unit"] == "mm"
    row = report.rows["v"]
    assert row["objects"] == int(memory.objects.max())
    assert row["foreground_pixels"] == int(memory.segmentation.sum())
    with open(out / "v_objects.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(memory.object_rows)
    for mine, theirs in zip(table, memory.object_rows):
        for key, value in theirs.items():
            if key == "orientation_deg":
                continue
            if isinstance(value, str):
                assert mine[key] == value
            else:
                assert float(mine[key]) == pytest.approx(value, rel=1e-6, abs=1e-6), key


def test_label_merges_an_object_crossing_chunk_corners(inproc, tmp_path):
    volume = np.zeros((30, 30, 30), np.float32)
    volume[5:25, 14:17, 14:17] = 1          # a rod through the corner of 8 chunks
    volume[14:17, 5:25, 14:17] = 1
    volume[14:17, 14:17, 5:25] = 1
    volume[16, 16, 16] = 1
    for i in range(3):                      # a diagonal chain: corners touch only
        volume[2 + i, 2 + i, 2 + i] = 1
    volume[28, 28, 28] = 1
    recipe = _recipe("threshold: {method: manual, value: 0.5}", "label",
                     "write: {suffix: .zarr}", chunks="15")
    _, out = _run(inproc, tmp_path, recipe, volume, "zyx")
    objects, _ = read_image(out / "v_objects.zarr")
    expected, n = ndi.label(volume > 0.5, structure=np.ones((3, 3, 3)))
    assert n == 3 and objects.max() == 3
    pairs = set(zip(objects[volume > 0].tolist(), expected[volume > 0].tolist()))
    assert len(pairs) == 3  # a bijection between label values
    assert len(np.unique(objects[5:25, 14:17, 14:17])) == 1


def test_min_size_uses_the_merged_object_sizes(inproc, tmp_path):
    image = np.zeros((24, 24), np.float32)
    image[10:14, 6:18] = 1     # 48 px, split 4 ways by 12-px chunks: no part reaches 20
    image[1:3, 1:3] = 1        # 4 px: removed
    recipe = _recipe("threshold: {method: manual, value: 0.5}", "postprocess: {min_size: 20}",
                     "label", "write: {suffix: .zarr}", chunks="12")
    _, out = _run(inproc, tmp_path, recipe, image, "yx")
    seg, _ = read_image(out / "v.zarr")
    objects, _ = read_image(out / "v_objects.zarr")
    assert seg.sum() == 48 and objects.max() == 1 and (objects > 0).sum() == 48


@pytest.mark.parametrize("shape, axes", [((37, 41), "yx"), ((5, 30, 34), "tyx")])
def test_clean_spots_and_minus_log_with_halo_equal_the_in_memory_result(
        inproc, tmp_path, shape, axes):
    rng = np.random.default_rng(3)
    image = (0.5 + 0.2 * _smooth(shape, seed=2)).astype(np.float32)
    spots = rng.random(shape) < 0.01
    image[spots] = 0.95
    low, high = np.quantile(-np.log(image), [0.4, 0.7])
    recipe = _recipe("clean_spots: {method: baseline, threshold: 0.1, size: 7}",
                     "minus_log", f"threshold: {{method: multiotsu, levels: [{low}, {high}]}}",
                     "measure", "write: {suffix: .zarr}", chunks="[5, 11, 13]"
                     if len(shape) == 3 else "[11, 13]")
    report, out = _run(inproc, tmp_path, recipe, image, axes)
    assert report.rows["v"]["halo"] == ([0, 3, 3] if len(shape) == 3 else [3, 3])
    memory = apply_recipe(recipe, image, {"axes": axes}, {})
    seg, meta = read_image(out / "v.zarr")
    np.testing.assert_array_equal(seg, memory.segmentation)
    assert meta["classes"] == ["class 1", "class 2", "class 3"]
    assert len(np.unique(seg)) == 3
    objects, _ = read_image(out / "v_objects.zarr")
    np.testing.assert_array_equal(objects, memory.objects)
    with open(out / "v_objects.csv", newline="") as handle:
        means = [float(r["mean_intensity"]) for r in csv.DictReader(handle)]
    np.testing.assert_allclose(means, [r["mean_intensity"] for r in memory.object_rows],
                               rtol=1e-6, atol=1e-6)


def test_global_threshold_fits_on_chunk_samples(inproc, tmp_path):
    image = _smooth((30, 31, 29), seed=4)
    recipe = _recipe("threshold: {method: otsu, fit: global, sample_pixels: 5000}",
                     "write: {suffix: .zarr}", chunks="16")
    report, out = _run(inproc, tmp_path, recipe, image, "zyx")
    levels = report.rows["v"]["threshold_levels"]
    from niseg.threshold import threshold, threshold_value

    # A sample of 5000 of 27,000 pixels: close to the level of all pixels ...
    assert levels[0] == pytest.approx(threshold_value(image, method="otsu"), abs=0.01)
    # ... and applied exactly as the in-memory threshold applies it.
    seg, _ = read_image(out / "v.zarr")
    np.testing.assert_array_equal(seg, threshold(image, method="otsu", levels=levels)[0])


@pytest.mark.parametrize("shape, axes", [((40, 44), "yx"), ((20, 22, 24), "zyx")])
def test_classify_with_the_model_halo_equals_the_in_memory_prediction(
        inproc, tmp_path, shape, axes):
    from niseg.classify import PixelClassifier
    from niseg.models import save_model

    image = _smooth(shape, seed=5)
    truth = (image > np.quantile(image, 0.6)).astype(np.uint8)
    model = PixelClassifier(features="fast", n_estimators=8, n_jobs=1).fit(image, masks=truth)
    assert max(model.halo) > 0
    save_model(model, tmp_path / "m.niseg")
    recipe = _recipe(f"classify: {{model: {tmp_path / 'm.niseg'}}}", "label",
                     "write: {suffix: .zarr}", chunks="[11, 12, 13]" if len(shape) == 3 else
                     "[17, 23]")
    report, out = _run(inproc, tmp_path, recipe, image, axes)
    assert report.rows["v"]["halo"] == list(model.halo)
    seg, _ = read_image(out / "v.zarr")
    expected = model.predict(image)
    np.testing.assert_array_equal(seg, expected)
    objects, _ = read_image(out / "v_objects.zarr")
    from niseg.objects import label_objects

    np.testing.assert_array_equal(objects, label_objects(expected))
