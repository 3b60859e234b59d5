"""Applying recipes: global fits, every step on synthetic images with known answers, outputs."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from niseg.batch import (
    Recipe,
    apply_recipe,
    fit_global,
    load_recipe,
    output_keys,
    planned_outputs,
    prepare_state,
    read_input,
    run_recipe_serial,
    write_result,
)
from niseg.io import read_image, write_image
from niseg.threshold import threshold_value


def _recipe(*steps: str, name: str | None = None) -> Recipe:
    head = "niseg_recipe: 1\n" + (f"name: {name}\n" if name else "") + "steps:\n"
    return Recipe.from_yaml(head + "".join(f"  - {s}\n" for s in steps))


def _series(scales=(1.0, 1.25, 1.5), shape=(40, 48)) -> list[np.ndarray]:
    """The same scene at different brightness: a square on a background, some noise."""
    rng = np.random.default_rng(0)
    scene = np.full(shape, 10.0)
    scene[8:24, 10:30] = 30.0
    scene[28:34, 4:12] = 18.0  # a dim object whose class depends on the level
    return [(scale * scene + rng.normal(0, 1.5, shape)).astype(np.float32)
            for scale in scales]


def _objects_image() -> np.ndarray:
    image = np.zeros((32, 32), np.float32)
    image[2:6, 2:6] = 1.0        # 16 px
    image[10:15, 10:18] = 1.0    # 40 px
    image[25, 25] = 1.0          # a 1-pixel speck
    return image


def test_global_threshold_fits_one_level_for_the_series():
    images = _series()
    recipe = _recipe("threshold: {method: otsu, fit: global}")
    state = fit_global(recipe, [(im, {"axes": "yx"}) for im in images])
    levels = state["threshold"]["levels"]
    pooled = np.concatenate([im.ravel() for im in images])
    assert levels == [pytest.approx(threshold_value(pooled, method="otsu"), abs=0)]
    assert state["threshold"]["fit_pixels"] == pooled.size and state["threshold"]["inputs"] == 3
    results = [apply_recipe(recipe, im, {"axes": "yx"}, state) for im in images]
    for image, result in zip(images, results):
        np.testing.assert_array_equal(result.segmentation, (image > levels[0]).astype(np.uint8))
        assert result.measurements["threshold_levels"] == levels
        assert result.measurements["threshold_fit"] == "global"
    # One level for all: the dim object is foreground only in the brightest image.
    fractions = [r.measurements["foreground_fraction"] for r in results]
    assert fractions[0] == pytest.approx(320 / 1920, abs=0.01)
    assert fractions[1] == pytest.approx(320 / 1920, abs=0.01)
    assert fractions[2] == pytest.approx((320 + 48) / 1920, abs=0.01)


def test_per_file_thresholds_differ_with_brightness():
    images = _series()
    recipe = _recipe("threshold: {method: otsu}")
    state = fit_global(recipe, [(im, {"axes": "yx"}) for im in images])
    assert "threshold" not in state
    levels = [apply_recipe(recipe, im, {"axes": "yx"}, state).measurements["threshold_levels"][0]
              for im in images]
    assert levels[0] < levels[1] < levels[2]
    for image, level in zip(images, levels):
        assert level == pytest.approx(threshold_value(image, method="otsu"), abs=0)


def test_global_sample_is_seeded_and_capped():
    images = _series(shape=(100, 100))
    recipe = _recipe("threshold: {method: multiotsu, classes: 3, fit: global, "
                     "sample_pixels: 2000, seed: 3}")
    pairs = [(im, {"axes": "yx"}) for im in images]
    first = fit_global(recipe, pairs)["threshold"]
    again = fit_global(recipe, pairs)["threshold"]
    assert first == again and first["fit_pixels"] == 3 * 2000 and len(first["levels"]) == 2
    other = fit_global(_recipe("threshold: {method: multiotsu, classes: 3, fit: global, "
                               "sample_pixels: 2000, seed: 4}"), pairs)["threshold"]
    assert other["levels"] != first["levels"]
    result = apply_recipe(recipe, images[0], {"axes": "yx"}, {"threshold": first})
    assert sorted(np.unique(result.segmentation).tolist()) == [1, 2, 3]
    assert result.metadata["classes"] == ["class 1", "class 2", "class 3"]


def test_global_step_needs_its_fit():
    recipe = _recipe("threshold: {fit: global}")
    with pytest.raises(ValueError, match="no levels were fitted; call fit_global"):
        apply_recipe(recipe, _series()[0], {"axes": "yx"}, {})


def test_postprocess_label_measure_numbers_in_physical_units():
    recipe = _recipe("threshold: {method: manual, value: 0.5}", "postprocess: {min_size: 5}",
                     "label", "measure")
    meta = {"axes": "yx", "pixel_size": [0.5, 0.5], "unit": "mm", "source": "/data/a.tif"}
    result = apply_recipe(recipe, _objects_image(), meta, {})
    row = result.measurements
    assert row["input"] == "/data/a.tif" and row["shape"] == [32, 32]
    assert row["objects"] == 2 and len(result.object_rows) == 2
    assert row["foreground_pixels"] == 56 and row["background_pixels"] == 32 * 32 - 56
    assert row["foreground_area_mm2"] == pytest.approx(14.0)
    assert row["foreground_fraction"] == pytest.approx(56 / 1024)
    areas = sorted(r["area_mm2"] for r in result.object_rows)
    assert areas == [pytest.approx(4.0), pytest.approx(10.0)]
    assert all(r["mean_intensity"] == pytest.approx(1.0) for r in result.object_rows)
    assert result.objects.dtype == np.int32 and result.objects.max() == 2
    assert result.metadata == {"axes": "yx", "pixel_size": [0.5, 0.5], "unit": "mm",
                               "classes": ["background", "foreground"]}


def test_measure_without_label_and_with_given_pixel_size():
    recipe = _recipe("threshold: {method: manual, value: 0.5}",
                     "measure: {pixel_size: [2.0], unit: um, intensity: false}")
    result = apply_recipe(recipe, _objects_image(), {"axes": "yx"}, {})
    assert result.measurements["objects"] == 3
    assert result.measurements["measure_pixel_size"] == (2.0, 2.0)
    assert result.measurements["measure_unit"] == "um"
    assert "foreground_area_um2" not in result.measurements  # no pixel size in the metadata
    rows = sorted(result.object_rows, key=lambda r: r["area_px"])
    assert [r["area_um2"] for r in rows] == [4.0, 64.0, 160.0]
    assert "mean_intensity" not in rows[0]


def test_classify_step_matches_model_predict(tmp_path, monkeypatch):
    from niseg.classify import PixelClassifier
    from niseg.models import save_model

    image = _series(scales=(1.0,))[0]
    labels = np.zeros(image.shape, np.uint8)
    labels[12:20, 14:26] = 2
    labels[0:4, :] = 1
    model = PixelClassifier(features="fast", n_estimators=10, n_jobs=1).fit(image, labels)
    (tmp_path / "models").mkdir()
    save_model(model, tmp_path / "models" / "roots.niseg")
    (tmp_path / "recipe.yaml").write_text(
        "niseg_recipe: 1\nsteps:\n  - classify: {model: models/roots.niseg, tile: 16}\n")
    monkeypatch.chdir(tmp_path.parent)
    recipe = load_recipe(tmp_path / "recipe.yaml")
    state = prepare_state(recipe)
    assert state["classify"]["model"] == str(tmp_path / "models" / "roots.niseg")
    assert state["classify"]["kind"] == "pixel-classifier"
    result = apply_recipe(recipe, image, {"axes": "yx"}, state)
    expected = model.predict(image)
    np.testing.assert_array_equal(result.segmentation, expected)
    assert result.metadata["classes"] == ["class 1", "class 2"]
    assert result.measurements["class_2_pixels"] == int((expected == 2).sum())
    # A model replaced after the run was prepared is refused, not silently used.
    from niseg.batch import _steps_apply

    _steps_apply._MODEL_CACHE.clear()
    model_file = tmp_path / "models" / "roots.niseg"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="changed after the recipe run was prepared"):
        apply_recipe(recipe, image, {"axes": "yx"}, state)


def test_normalize_reads_references_once_and_scales_exposure(tmp_path):
    transmission = np.ones((24, 24), np.float32)
    transmission[6:14, 8:20] = 0.5
    (tmp_path / "ob").mkdir()
    for i in range(2):
        write_image(tmp_path / "ob" / f"ob_{i}.tif", np.full((24, 24), 1000, np.uint16),
                    {"exposure_time": 1.0})
    write_image(tmp_path / "dark.tif", np.full((24, 24), 100, np.uint16), {"exposure_time": 1.0})
    sample = np.round(2 * (900 * transmission + 100)).astype(np.uint16)  # 2 s exposure
    (tmp_path / "recipe.yaml").write_text(
        "niseg_recipe: 1\nsteps:\n  - normalize: {open_beam: ob, dark: dark.tif}\n"
        "  - threshold: {method: manual, value: 0.75, foreground: dark}\n  - measure\n")
    recipe = load_recipe(tmp_path / "recipe.yaml")
    state = prepare_state(recipe)
    assert len(state["normalize"]["open_beam"]) == 2 and len(state["normalize"]["dark"]) == 1
    assert pickle.loads(pickle.dumps(state))["normalize"]["dark_exposure"] == [1.0]
    with pytest.warns(UserWarning, match="sample exposure .2 s. differs from open-beam"):
        result = apply_recipe(recipe, sample, {"axes": "yx", "exposure_time": 2.0}, state)
    assert result.measurements["normalize_exposure_scaling"] is True
    assert result.measurements["foreground_pixels"] == 8 * 12
    assert result.object_rows[0]["mean_intensity"] == pytest.approx(0.5, abs=1e-3)
    assert result.metadata["quantity"] == "transmission"
    # Without the sample's exposure time nothing is scaled: T is twice too large.
    unscaled = apply_recipe(recipe, sample, {"axes": "yx"}, state)
    assert unscaled.measurements["normalize_exposure_scaling"] is False
    assert unscaled.measurements["foreground_pixels"] == 0


def test_clean_spots_and_minus_log_before_a_threshold():
    rng = np.random.default_rng(1)
    transmission = np.full((48, 48), 0.9, np.float32) + rng.normal(0, 0.01, (48, 48))
    transmission[10:30, 10:30] = 0.5 + rng.normal(0, 0.01, (20, 20))
    transmission = transmission.astype(np.float32)
    spots = [(40, 5), (3, 40), (44, 44)]
    for y, x in spots:
        transmission[y, x] = 0.05  # dark spots: dead pixels
    recipe = _recipe("clean_spots: {polarity: dark}", "minus_log",
                     "threshold: {method: manual, value: 0.4}", "measure")
    result = apply_recipe(recipe, transmission, {"axes": "yx"}, {})
    row = result.measurements
    assert row["clean_spots_spot_pixels"] >= len(spots)
    assert row["objects"] == 1 and row["foreground_pixels"] == 400
    assert result.object_rows[0]["mean_intensity"] == pytest.approx(-math.log(0.5), abs=0.02)
    assert result.metadata["quantity"] == "attenuation (-ln T)"


def test_cluster_step_per_file_and_nan_pixels():
    image = np.repeat([10.0, 50.0], [300, 500]).reshape(20, 40).astype(np.float32)
    image[0, 0] = np.nan
    recipe = _recipe("cluster: {classes: 2, seed: 1}")
    result = apply_recipe(recipe, image, {"axes": "yx"}, {})
    row = result.measurements
    assert row["cluster_1_pixels"] == 299 and row["cluster_2_pixels"] == 500
    assert result.segmentation[0, 0] == 0 and row["cluster_classes"] == 2
    assert [round(c[0]) for c in row["cluster_centres"]] == [10, 50]


def _write_inputs(folder: Path) -> list[Path]:
    paths = [folder / "day1" / "a.tif", folder / "day2" / "a.tif", folder / "day2" / "b.tif"]
    for path, image in zip(paths, _series()):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, image, {"pixel_size": [0.1, 0.1], "unit": "mm"})
    return paths


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_serial_run_mirrors_inputs_and_records_provenance(tmp_path):
    inputs = _write_inputs(tmp_path / "in")
    before = {p: p.read_bytes() for p in inputs}
    recipe = _recipe("threshold: {fit: global}", "postprocess: {min_size: 4}", "label",
                     "measure", "write", name="series")
    out = tmp_path / "out"
    seen = []
    rows = run_recipe_serial(recipe, str(tmp_path / "in" / "*" / "*.tif"), out,
                             progress=lambda done, total, text: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert _files(tmp_path) - _files(out) == {f"in/{p.parent.name}/{p.name}" for p in inputs} \
        | {f"out/{f}" for f in _files(out)}
    assert _files(out) == {"recipe.yaml", "measurements.csv", "measurements.json",
                           *(f"{d}/{n}{s}" for d, n in (("day1", "a"), ("day2", "a"),
                                                        ("day2", "b"))
                             for s in (".tif", "_objects.tif", "_objects.csv"))}
    assert all(p.read_bytes() == data for p, data in before.items())
    assert load_recipe(out / "recipe.yaml") == recipe
    saved = json.loads((out / "measurements.json").read_text())
    levels = saved["global"]["threshold"]["levels"]
    assert len(levels) == 1 and [r["threshold_levels"] for r in saved["files"]] == [levels] * 3
    assert [r["key"] for r in saved["files"]] == ["day1/a", "day2/a", "day2/b"]
    assert saved["recipe"] == recipe.to_dict()
    lines = (out / "measurements.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("key,input,shape,pixel_size,unit,")
    labels, meta = read_image(out / "day2" / "b.tif")
    assert labels.dtype == np.uint8 and meta["classes"] == ["background", "foreground"]
    assert meta["pixel_size"] == pytest.approx([0.1, 0.1]) and meta["recipe"] == "series"
    objects, _ = read_image(out / "day1" / "a_objects.tif")
    assert objects.max() == rows[0]["objects"] >= 1
    assert rows[0]["foreground_area_mm2"] == pytest.approx(rows[0]["foreground_pixels"] * 0.01)


def test_outputs_stay_inside_out_dir(tmp_path):
    inputs = _write_inputs(tmp_path / "in")
    dotted = tmp_path / "in" / "day1" / ".." / "day2" / "b.tif"
    assert output_keys([inputs[0], dotted]) == ["day1/a", "day2/b"]
    assert output_keys([dotted]) == ["b"]
    with pytest.raises(ValueError, match="would give the same output name 'a'"):
        output_keys([tmp_path / "x" / "a.tif", tmp_path / "x" / "a.png"])
    recipe = _recipe("threshold", "write")
    result = apply_recipe(recipe, _series()[0], {"axes": "yx"}, {})
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="would lie outside the output folder"):
        write_result(recipe, result, tmp_path / "out", "../escaped")
    assert not (tmp_path / "escaped.tif").exists()
    with pytest.raises(ValueError, match="is also an input; choose another out_dir"):
        run_recipe_serial(recipe, inputs, tmp_path / "in", overwrite=True)


def test_existing_output_is_refused_before_any_work(tmp_path):
    inputs = _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    (out / "day2").mkdir(parents=True)
    (out / "day2" / "b.tif").write_bytes(b"keep me")
    recipe = _recipe("threshold", "write")
    with pytest.raises(FileExistsError, match="b.tif' already exists"):
        run_recipe_serial(recipe, inputs, out)
    assert _files(out) == {"day2/b.tif"} and (out / "day2" / "b.tif").read_bytes() == b"keep me"
    run_recipe_serial(recipe, inputs, out, overwrite=True)
    assert read_image(out / "day2" / "b.tif")[0].dtype == np.uint8


def test_planned_outputs_and_read_step(tmp_path):
    recipe = _recipe("read: {axes: tyx}", "threshold", "label", "write: {suffix: .png}")
    assert planned_outputs(recipe, "s/a") == ["s/a.png", "s/a_objects.tif"]
    assert planned_outputs(_recipe("threshold", "measure"), "a") == []
    write_image(tmp_path / "stack.tif", np.zeros((2, 4, 4), np.uint16))
    image, meta = read_input(recipe, tmp_path / "stack.tif")
    assert meta["axes"] == "tyx" and image.shape == (2, 4, 4)
    result = apply_recipe(recipe, _series()[0], {"axes": "yx"}, {})
    assert pickle.loads(pickle.dumps(result)).measurements == result.measurements


def test_classify_with_a_threshold_model(tmp_path):
    from niseg.models import save_model
    from niseg.threshold import ThresholdSegmenter

    image = _series(scales=(1.0,))[0]
    model = ThresholdSegmenter(sigma=1.0).fit(image)
    save_model(model, tmp_path / "t.niseg")
    recipe = Recipe.from_yaml("niseg_recipe: 1\nsteps: [classify: {model: t.niseg}, measure]",
                              base_dir=tmp_path)
    state = prepare_state(recipe)
    assert state["classify"]["kind"] == "smoothed-threshold"
    result = apply_recipe(recipe, image, {"axes": "yx"}, state)
    np.testing.assert_array_equal(result.segmentation, model.predict(image))
    assert result.measurements["objects"] == 1  # the bright square; the dim object is below
    assert abs(result.measurements["foreground_pixels"] - 16 * 20) <= 8
    assert result.metadata["classes"] == ["background", "foreground"]
