"""Recipe parsing and validation: every error names the file and the line."""

from __future__ import annotations

import inspect
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from niseg.batch import RECIPE_VERSION, Recipe, RecipeError, list_steps, load_recipe
from niseg.batch._steps import STEPS
from niseg.io import write_image

VALID = """\
niseg_recipe: 1
name: roots-otsu
steps:
  - read: {axes: yx}
  - clean_spots: {method: median_typo_free, size: 5}
  - threshold: {method: otsu, fit: global}
  - postprocess: {min_size: 20, fill_holes: true}
  - label
  - measure: {}
  - write: {}
""".replace("median_typo_free", "auto")


def _write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(_write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return message


def _steps(*lines: str, header: str = "niseg_recipe: 1\nsteps:\n") -> str:
    return header + "".join(f"  - {line}\n" for line in lines)


def test_valid_recipe_fills_defaults_and_records_lines(tmp_path):
    recipe = load_recipe(_write(tmp_path, VALID))
    assert recipe.name == "roots-otsu" and recipe.version == 1
    assert [s.name for s in recipe.steps] == ["read", "clean_spots", "threshold", "postprocess",
                                            "label", "measure", "write"]
    assert [s.line for s in recipe.steps] == [4, 5, 6, 7, 8, 9, 10]
    threshold = recipe.steps[2]
    assert threshold.params["method"] == "otsu" and threshold.params["foreground"] == "bright"
    assert threshold.params["sample_pixels"] == 1_000_000
    assert set(threshold.params) == set(STEPS["threshold"].param_names)
    assert recipe.steps[3].params == {"min_size": 20, "keep_largest": False, "fill_holes": True,
                                      "classes": None, "connectivity": None}
    assert recipe.path == tmp_path / "recipe.yaml" and recipe.source.startswith("niseg_recipe")


def test_round_trip_through_yaml_and_pickle(tmp_path):
    recipe = load_recipe(_write(tmp_path, VALID))
    again = Recipe.from_yaml(recipe.to_yaml())
    assert again == recipe
    assert again.to_dict() == recipe.to_dict()
    assert pickle.loads(pickle.dumps(recipe)) == recipe
    saved = _write(tmp_path, recipe.to_yaml(), "provenance.yaml")
    assert load_recipe(saved) == recipe
    assert recipe.to_dict()["steps"][2]["threshold"]["fit"] == "global"


def test_stages_split_at_the_global_step(tmp_path):
    recipe = load_recipe(_write(tmp_path, VALID))
    before, step, after = recipe.stages()
    assert [s.name for s in before] == ["read", "clean_spots"]
    assert step is recipe.steps[2] and recipe.global_step is step
    assert [s.name for s in after] == ["threshold", "postprocess", "label", "measure", "write"]
    plain = Recipe.from_yaml(_steps("threshold"))
    assert plain.stages() == (plain.steps, None, ())


def test_unknown_step_names_line_and_suggests(tmp_path):
    message = _error(tmp_path, _steps("threshold", "postproces: {min_size: 3}"))
    assert message.startswith("recipe.yaml, line 4: unknown step 'postproces'; did you mean "
                              "'postprocess'? (known: read, normalize, ")


def test_unknown_parameter_names_its_line(tmp_path):
    text = _steps("threshold:", header="niseg_recipe: 1\nsteps:\n") + "      fit: global\n" \
        "      metod: li\n"
    message = _error(tmp_path, text)
    assert message.startswith("recipe.yaml, line 5: step 'threshold' has no parameter 'metod'; "
                              "did you mean 'method'? (parameters: method, foreground, ")


@pytest.mark.parametrize(("step", "expected"), [
    ("threshold: {method: otsuu}", "parameter 'method' must be one of manual, otsu, "),
    ("threshold: {fill_holes: 3}", "parameter 'fill_holes' must be true or false, got 3"),
    ("threshold: {min_size: -1}", "parameter 'min_size' must be int, 0 <= value, got -1"),
    ("threshold: {min_size: 2.5}", "parameter 'min_size' must be a whole number, got 2.5"),
    ("clean_spots: {size: 41}", "parameter 'size' must be int, 3 <= value <= 31, got 41"),
    ("threshold: {object_size: [1, 2, 3]}", "parameter 'object_size' must hold 2 numbers"),
    ("cluster: {features: [intensity, sobel]}", "holds 'sobel', which is not one of"),
    ("cluster: {classes: many}", "parameter 'classes' must be a whole number, got 'many'"),
    ("postprocess: {classes: [1, 2.5]}",
     "parameter 'classes' must be a whole number or a list of them"),
    ("read: {axes: yxq}", "axes must be distinct letters from zyxtlc"),
    ("normalize: {open_beam: ob.tif, dose_roi: '0:10'}",
     "dose_roi '0:10' must look like y0:y1,x0:x1"),
])
def test_wrong_type_or_range_names_the_value_line(tmp_path, step, expected):
    write_image(tmp_path / "ob.tif", np.full((4, 4), 100, np.uint16))
    name = step.split(":")[0]
    if name in ("threshold", "cluster"):
        lines = [step]
    elif name in ("read", "normalize", "clean_spots"):
        lines = [step, "threshold"]
    else:
        lines = ["threshold", step]
    message = _error(tmp_path, _steps(*lines))
    assert message.startswith(f"recipe.yaml, line {3 + lines.index(step)}: step '{name}'")
    assert expected in message


def test_cross_parameter_checks(tmp_path):
    assert _error(tmp_path, _steps("threshold: {method: manual}")) == (
        "recipe.yaml, line 3: step 'threshold': method 'manual' needs the parameter value")
    message = _error(tmp_path, _steps("threshold: {method: local, block_size: 15, fit: global}"))
    assert "method 'local' cannot be fitted globally" in message
    assert "fit: global has nothing to fit" in _error(
        tmp_path, _steps("threshold: {levels: [0.5], fit: global}"))
    assert "give both low and high" in _error(
        tmp_path, _steps("threshold: {method: hysteresis, low: 0.2}"))
    assert "size must be odd" in _error(tmp_path, _steps("clean_spots: {size: 4}", "threshold"))


def test_missing_segmentation_step_points_at_steps(tmp_path):
    message = _error(tmp_path, _steps("clean_spots", "write"))
    assert message == ("recipe.yaml, line 2: the recipe has no segmentation step (one of "
                       "threshold, cluster, classify)")


@pytest.mark.parametrize(("lines", "bad_line", "expected"), [
    (("measure", "threshold"), 3, "step 'measure' comes before any segmentation step"),
    (("threshold", "write", "write"), 5, "step 'write' appears twice (first on line 4)"),
    (("threshold", "normalize: {open_beam: ob.tif}"), 4,
     "step 'normalize' cannot come after 'threshold' (line 3)"),
    (("threshold", "cluster"), 4,
     "step 'cluster' is a second segmentation step after 'threshold' (line 3)"),
    (("threshold", "label", "postprocess"), 5, "step 'postprocess' cannot come after 'label'"),
    (("threshold", "write", "measure"), 5, "step 'measure' cannot come after 'write'"),
    (("threshold", "read"), 4, "step 'read' must be the first step"),
])
def test_steps_in_an_order_that_makes_no_sense(tmp_path, lines, bad_line, expected):
    write_image(tmp_path / "ob.tif", np.full((4, 4), 100, np.uint16))
    message = _error(tmp_path, _steps(*lines))
    assert message.startswith(f"recipe.yaml, line {bad_line}: {expected}")


def test_repeatable_steps_are_allowed(tmp_path):
    recipe = load_recipe(_write(tmp_path, _steps("clean_spots", "clean_spots: {size: 3}",
                                                 "threshold", "postprocess",
                                                 "postprocess: {fill_holes: true}")))
    assert [s.params.get("size") for s in recipe.steps][:2] == [5, 3]


def test_model_file_missing_or_not_a_model(tmp_path):
    message = _error(tmp_path, _steps("classify: {model: models/roots.niseg}"))
    assert message.startswith("recipe.yaml, line 3: step 'classify' parameter 'model' names '")
    assert message.endswith("roots.niseg', which does not exist")
    (tmp_path / "bad.niseg").write_bytes(b"not a zip")
    message = _error(tmp_path, _steps("classify: {model: bad.niseg}"))
    assert message.startswith("recipe.yaml, line 3: step 'classify' model ")
    assert _error(tmp_path, _steps("classify")).startswith(
        "recipe.yaml, line 3: step 'classify' needs the parameter 'model'")


def test_reference_paths_resolve_relative_to_the_recipe(tmp_path, monkeypatch):
    (tmp_path / "ob").mkdir()
    for i in range(2):
        write_image(tmp_path / "ob" / f"ob_{i}.tif", np.full((4, 4), 100, np.uint16))
    monkeypatch.chdir(tmp_path.parent)
    recipe = load_recipe(_write(tmp_path, _steps("normalize: {open_beam: ob/*.tif}",
                                                 "threshold")))
    assert recipe.steps[0].params["open_beam"] == [str(tmp_path / "ob" / "*.tif")]
    message = _error(tmp_path, _steps("normalize: {open_beam: [ob/*.tif, dark/*.tif]}",
                                      "threshold"))
    assert message.startswith("recipe.yaml, line 3: step 'normalize' parameter 'open_beam' "
                              "names '")
    assert "dark/*.tif', which matches no image file" in message


def test_version_and_top_level_keys(tmp_path):
    newer = _error(tmp_path, "niseg_recipe: 2\nsteps: [threshold]\n")
    assert newer == (f"recipe.yaml, line 1: niseg_recipe is 2 but this niseg reads recipe "
                     f"format {RECIPE_VERSION} at most; update niseg")
    assert _error(tmp_path, "steps: [threshold]\n").startswith(
        "recipe.yaml, line 1: missing 'niseg_recipe: 1'")
    assert _error(tmp_path, "niseg_recipe: one\nsteps: [threshold]\n").startswith(
        "recipe.yaml, line 1: niseg_recipe must be a format version")
    assert _error(tmp_path, "niseg_recipe: 1\nstep: [threshold]\n") == (
        "recipe.yaml, line 2: unknown key 'step'; did you mean 'steps'? (known: niseg_recipe, "
        "name, description, steps)")
    assert _error(tmp_path, "niseg_recipe: 1\nname: a\nname: b\nsteps: [threshold]\n") == (
        "recipe.yaml, line 3: the recipe has 'name' twice")
    assert _error(tmp_path, "niseg_recipe: 1\nsteps: []\n").startswith(
        "recipe.yaml, line 2: steps must be a non-empty list")


def test_broken_or_unsafe_yaml_is_refused_with_its_line(tmp_path):
    message = _error(tmp_path, "niseg_recipe: 1\nsteps:\n  - threshold: {method: otsu\n")
    assert re.match(r"recipe\.yaml, line [45]: not valid YAML \(", message)
    assert _error(tmp_path, "") == ("recipe.yaml: the recipe is empty; it needs niseg_recipe: "
                                    "1 and steps")
    marker = tmp_path / "executed"
    unsafe = (f"niseg_recipe: 1\nsteps:\n  - threshold: {{value: !!python/object/apply:"
              f"pathlib.Path.touch [{str(marker)!r}]}}\n")
    message = _error(tmp_path, unsafe)
    assert message.startswith("recipe.yaml, line 3: cannot read this value")
    assert not marker.exists()
    assert _error(tmp_path, _steps("[threshold, cluster]")).startswith(
        "recipe.yaml, line 3: each step must be a name or one 'name: {parameters}' mapping")


def test_text_recipes_and_bad_arguments(tmp_path):
    with pytest.raises(RecipeError, match=r"^recipe, line 3: unknown step 'x'"):
        Recipe.from_yaml(_steps("x"))
    with pytest.raises(ValueError, match="recipe file '.*nothing.yaml' does not exist"):
        load_recipe(tmp_path / "nothing.yaml")
    with pytest.raises(TypeError, match="text must be YAML text or a Path"):
        Recipe.from_yaml(3)  # type: ignore[arg-type]
    path = _write(tmp_path, _steps("threshold"))
    assert Recipe.from_yaml(path) == load_recipe(path)
    with pytest.raises(RecipeError, match=r"^recipe, line 1: a recipe is a mapping .* "
                       r"\(load_recipe\(path\) reads a recipe file\)$"):
        Recipe.from_yaml(str(path))


_RECIPE_ONLY = {"threshold": {"fit", "sample_pixels", "seed"}, "measure": {"intensity"},
                "classify": {"model", "tile", "device"}, "read": {"chunks"}}


def _wrapped(name: str):
    from niseg.cluster import cluster_pixels
    from niseg.io import read_image
    from niseg.objects import label_objects, measure_objects, postprocess
    from niseg.preprocess import clean_spots, minus_log, normalize
    from niseg.threshold import threshold

    return {"read": read_image, "normalize": normalize, "clean_spots": clean_spots,
            "minus_log": minus_log, "threshold": threshold, "cluster": cluster_pixels,
            "postprocess": postprocess, "label": label_objects,
            "measure": measure_objects}.get(name)


def test_step_parameters_are_arguments_of_the_wrapped_functions():
    listed = {s["name"]: s for s in list_steps()}
    assert list(listed) == list(STEPS)
    for name, entry in listed.items():
        assert entry["doc"] and all(p["doc"] for p in entry["params"])
        function = _wrapped(name)
        if function is None:
            continue
        arguments = set(inspect.signature(function).parameters)
        params = {p["name"] for p in entry["params"]} - _RECIPE_ONLY.get(name, set())
        assert params <= arguments, (name, params - arguments)
    assert [s["name"] for s in list_steps() if s["can_be_global"]] == ["threshold"]
    threshold = {p["name"]: p for p in listed["threshold"]["params"]}
    assert threshold["method"]["default"] == "otsu" and not threshold["method"]["required"]
    assert listed["classify"]["params"][0]["required"]
