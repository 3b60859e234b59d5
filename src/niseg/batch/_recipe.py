"""Recipes: YAML files of registered steps, validated completely before anything runs.

A recipe is parsed with PyYAML's safe composer (plain mappings, lists and scalars only; no
tags that build objects), so every error can name the line it comes from. Validation fills
in every default and turns relative paths into absolute ones (relative to the recipe's
folder), so :meth:`Recipe.to_yaml` is the exact recipe that ran, fit to be stored with the
outputs and loaded again anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import yaml

from ._steps import STEPS, StepSpec
from ._steps_params import ParamError, closest

__all__ = ["RECIPE_VERSION", "Recipe", "RecipeError", "Step", "load_recipe"]

#: Newest recipe format this niseg reads (the ``niseg_recipe:`` key).
RECIPE_VERSION = 1
_TOP_KEYS = ("niseg_recipe", "name", "description", "steps")
_ROLE_ORDER = ("read", "preprocess", "segment", "postprocess", "label", "measure", "write")


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the recipe file and the line."""

    def __init__(self, where: str, line: int | None, message: str) -> None:
        self.line = line
        prefix = where if line is None else f"{where}, line {line}"
        super().__init__(f"{prefix}: {message}")


@dataclasses.dataclass(frozen=True)
class Step:
    """One validated step: its registered ``name``, all ``params`` (defaults filled in) and
    the ``line`` of the recipe it came from (not compared)."""

    name: str
    params: dict[str, Any]
    line: int | None = dataclasses.field(default=None, compare=False)

    def __hash__(self) -> int:
        return hash((self.name, json.dumps(self.params, sort_keys=True)))

    @property
    def spec(self) -> StepSpec:
        return STEPS[self.name]

    @property
    def is_global(self) -> bool:
        """Whether the step is fitted once on all inputs before any input is processed."""
        return self.params.get("fit") == "global"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A validated recipe.

    Build one with :meth:`from_yaml` or :func:`load_recipe`; it is plain data (picklable),
    so it can be sent to batch workers as it is.

    Attributes
    ----------
    steps : tuple of Step
        The steps in order, every parameter present.
    version : int
        The recipe format version (``niseg_recipe``).
    name, description : str or None
        Free text from the recipe.
    source : str
        The YAML text it was read from (not compared).
    path : Path or None
        The recipe file (not compared).

    Examples
    --------
    >>> recipe = Recipe.from_yaml('''
    ... niseg_recipe: 1
    ... name: demo
    ... steps:
    ...   - threshold: {method: otsu, fit: global}
    ...   - postprocess: {min_size: 20}
    ...   - measure
    ... ''')
    >>> [s.name for s in recipe.steps], recipe.global_step.params["fit"]
    (['threshold', 'postprocess', 'measure'], 'global')
    >>> Recipe.from_yaml(recipe.to_yaml()) == recipe
    True
    """

    steps: tuple[Step, ...]
    version: int = RECIPE_VERSION
    name: str | None = None
    description: str | None = None
    source: str = dataclasses.field(default="", compare=False, repr=False)
    path: Path | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def from_yaml(cls, text: str | os.PathLike, *, base_dir: str | os.PathLike | None = None
                  ) -> Recipe:
        """Parse and validate a recipe from YAML text, or from a file given as a Path.

        Parameters
        ----------
        text : str or PathLike
            The YAML text; a :class:`~pathlib.Path` (any PathLike) is read as a file.
        base_dir : str or PathLike, optional
            Folder that relative paths in the recipe start from: by default the recipe
            file's folder, or the current folder for text.

        Returns
        -------
        Recipe

        Raises
        ------
        RecipeError
            (a ValueError) naming the recipe and line of the first problem found.
        """
        if isinstance(text, os.PathLike):
            return load_recipe(text)
        if not isinstance(text, str):
            raise TypeError(f"text must be YAML text or a Path, not {type(text).__name__}")
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        return _parse(text, "recipe", base, None)

    def __hash__(self) -> int:
        return hash((self.steps, self.version, self.name, self.description))

    @property
    def global_step(self) -> Step | None:
        """The step fitted on all inputs (``fit: global``), if any."""
        return next((s for s in self.steps if s.is_global), None)

    @property
    def chunks(self) -> list[int] | None:
        """Chunk side(s) of a chunked run (``read: {chunks: ...}``), or ``None``."""
        first = self.steps[0]
        return first.params.get("chunks") if first.name == "read" else None

    def stages(self) -> tuple[tuple[Step, ...], Step | None, tuple[Step, ...]]:
        """Split the pipeline at its global step.

        Returns
        -------
        before : tuple of Step
            Per-file steps that run before the global step (all steps without one).
        global_step : Step or None
            The step fitted once on the outputs of ``before`` for all inputs.
        after : tuple of Step
            The per-file steps from the global step on (it is applied per file with the
            fitted state).
        """
        step = self.global_step
        if step is None:
            return self.steps, None, ()
        i = self.steps.index(step)
        return self.steps[:i], step, self.steps[i:]

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data (the YAML structure, every default filled in)."""
        out: dict[str, Any] = {"niseg_recipe": self.version}
        if self.name is not None:
            out["name"] = self.name
        if self.description is not None:
            out["description"] = self.description
        out["steps"] = [{s.name: dict(s.params)} for s in self.steps]
        return out

    def to_yaml(self) -> str:
        """YAML text of :meth:`to_dict`; reading it back gives an equal recipe."""
        from niseg import __version__

        header = f"# validated by niseg {__version__}; every default filled in\n"
        return header + yaml.safe_dump(self.to_dict(), sort_keys=False,
                                       default_flow_style=None, width=100)


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and validate a recipe file.

    Parameters
    ----------
    path : str or PathLike
        A YAML recipe. Relative paths inside it are relative to its folder.

    Returns
    -------
    Recipe

    Raises
    ------
    RecipeError
        (a ValueError) naming the file and line of the first problem found.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "roots.yaml"
    >>> _ = path.write_text("niseg_recipe: 1\\nsteps:\\n  - thresold: {}\\n")
    >>> load_recipe(path)
    Traceback (most recent call last):
    ...
    niseg.batch._recipe.RecipeError: roots.yaml, line 3: unknown step 'thresold'; did you mean 'threshold'? (known: ...)
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"recipe file '{file}' does not exist")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read recipe file '{file}': {exc}") from None
    return _parse(text, file.name, Path(os.path.abspath(file)).parent, file)


# --------------------------------------------------------------------------- parsing


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _compose(text: str, where: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        raise RecipeError(where, line, f"not valid YAML ({exc.problem})") from None
    except yaml.YAMLError as exc:
        raise RecipeError(where, None, f"not valid YAML ({exc})") from None
    if root is None:
        raise RecipeError(where, None, "the recipe is empty; it needs niseg_recipe: 1 and "
                          "steps")
    return root


def _value(node: yaml.Node, where: str) -> Any:
    """A node's plain value (safe constructors only: no Python objects)."""
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = _line(node) if mark is None else mark.line + 1
        raise RecipeError(where, line, f"cannot read this value ({exc.problem}); a recipe "
                          "holds plain values only") from None


def _mapping(node: yaml.Node, where: str, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise RecipeError(where, _line(node), f"{what} must be a mapping of names to values")
    seen: set[str] = set()
    items = []
    for key_node, value_node in node.value:
        key = _value(key_node, where)
        if not isinstance(key, str):
            raise RecipeError(where, _line(key_node), f"{what} has a key {key!r} that is not "
                              "a name")
        if key in seen:
            raise RecipeError(where, _line(key_node), f"{what} has '{key}' twice")
        seen.add(key)
        items.append((key, key_node, value_node))
    return items


def _parse(text: str, where: str, base_dir: Path, path: Path | None) -> Recipe:
    root = _compose(text, where)
    if isinstance(root, yaml.ScalarNode):
        raise RecipeError(where, _line(root), "a recipe is a mapping with niseg_recipe and "
                          "steps, not a single value (load_recipe(path) reads a recipe file)")
    top = {key: (key_node, value_node)
           for key, key_node, value_node in _mapping(root, where, "the recipe")}
    for key, (key_node, _) in top.items():
        if key not in _TOP_KEYS:
            raise RecipeError(where, _line(key_node), f"unknown key '{key}'"
                              f"{closest(key, _TOP_KEYS)} (known: {', '.join(_TOP_KEYS)})")
    if "niseg_recipe" not in top:
        raise RecipeError(where, _line(root), "missing 'niseg_recipe: 1', the recipe format "
                          "version")
    version_node = top["niseg_recipe"][1]
    version = _value(version_node, where)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RecipeError(where, _line(version_node), f"niseg_recipe must be a format version "
                          f"such as 1, got {version!r}")
    if version > RECIPE_VERSION:
        raise RecipeError(where, _line(version_node), f"niseg_recipe is {version} but this "
                          f"niseg reads recipe format {RECIPE_VERSION} at most; update niseg")
    texts = {}
    for key in ("name", "description"):
        value = _value(top[key][1], where) if key in top else None
        if value is not None and not isinstance(value, str):
            raise RecipeError(where, _line(top[key][1]), f"{key} must be text, got {value!r}")
        texts[key] = value
    if "steps" not in top:
        raise RecipeError(where, _line(root), "missing 'steps', the list of steps to run")
    steps_node = top["steps"][1]
    if not isinstance(steps_node, yaml.SequenceNode) or not steps_node.value:
        raise RecipeError(where, _line(steps_node), "steps must be a non-empty list such as "
                          "'- threshold: {method: otsu}'")
    steps = tuple(_step(node, where, base_dir) for node in steps_node.value)
    _check_order(steps, where, _line(top["steps"][0]))
    from ._volume_plan import check_chunked

    check_chunked(steps, where)
    return Recipe(steps=steps, version=version, name=texts["name"],
                  description=texts["description"], source=text, path=path)


def _step(node: yaml.Node, where: str, base_dir: Path) -> Step:
    line = _line(node)
    if isinstance(node, yaml.ScalarNode):
        name, params_node = _value(node, where), None
    elif isinstance(node, yaml.MappingNode) and len(node.value) == 1:
        key_node, params_node = node.value[0]
        name = _value(key_node, where)
    else:
        raise RecipeError(where, line, "each step must be a name or one 'name: {parameters}' "
                          "mapping")
    if not isinstance(name, str) or name not in STEPS:
        known = ", ".join(STEPS)
        raise RecipeError(where, line, f"unknown step '{name}'{closest(str(name), list(STEPS))}"
                          f" (known: {known})")
    spec = STEPS[name]
    given: dict[str, tuple[yaml.Node, Any]] = {}
    if params_node is not None and not (isinstance(params_node, yaml.ScalarNode)
                                        and _value(params_node, where) is None):
        for key, key_node, value_node in _mapping(params_node, where, f"step '{name}'"):
            if spec.param(key) is None:
                listed = ", ".join(spec.param_names) or "none"
                raise RecipeError(where, _line(key_node), f"step '{name}' has no parameter "
                                  f"'{key}'{closest(key, spec.param_names)} (parameters: "
                                  f"{listed})")
            given[key] = (value_node, _value(value_node, where))
    params: dict[str, Any] = {}
    for param in spec.params:
        if param.name not in given:
            if param.required:
                raise RecipeError(where, line, f"step '{name}' needs the parameter "
                                  f"'{param.name}' ({param.doc[:1].lower() + param.doc[1:-1]})")
            default = param.default
            params[param.name] = list(default) if isinstance(default, list) else default
            continue
        value_node, value = given[param.name]
        try:
            params[param.name] = param.check(value, base_dir)
        except ParamError as exc:
            raise RecipeError(where, _line(value_node), f"step '{name}' parameter "
                              f"'{param.name}' {exc}") from None
    if spec.check is not None:
        problem = spec.check(params)
        if problem:
            raise RecipeError(where, line, f"step '{name}': {problem}")
    if name == "classify":
        _check_model(params["model"], where, _line(given["model"][0]))
    return Step(name=name, params=params, line=line)


def _check_model(path: str, where: str, line: int) -> None:
    from niseg.models import read_model_info

    try:
        read_model_info(path)
    except ValueError as exc:
        raise RecipeError(where, line, f"step 'classify' model {exc}") from None


def _check_order(steps: tuple[Step, ...], where: str, steps_line: int) -> None:
    """Refuse pipelines that make no sense, naming the line of the offending step."""
    segment = [s for s in steps if s.spec.role == "segment"]
    if not segment:
        names = ", ".join(n for n, s in STEPS.items() if s.role == "segment")
        raise RecipeError(where, steps_line, f"the recipe has no segmentation step (one of "
                          f"{names})")
    if len(segment) > 1:
        raise RecipeError(where, segment[1].line, f"step '{segment[1].name}' is a second "
                          f"segmentation step after '{segment[0].name}' (line "
                          f"{segment[0].line}); a recipe segments once")
    seen: dict[str, Step] = {}
    for i, step in enumerate(steps):
        spec = step.spec
        if step.name in seen and not spec.repeatable:
            raise RecipeError(where, step.line, f"step '{step.name}' appears twice (first on "
                              f"line {seen[step.name].line})")
        seen.setdefault(step.name, step)
        if step.name == "read" and i != 0:
            raise RecipeError(where, step.line, "step 'read' must be the first step")
        if spec.role in ("postprocess", "label", "measure") and not any(
                s.spec.role == "segment" for s in steps[:i]):
            raise RecipeError(where, step.line, f"step '{step.name}' comes before any "
                              f"segmentation step, but it works on a segmentation")
        rank = _ROLE_ORDER.index(spec.role)
        later = [s for s in steps[:i] if _ROLE_ORDER.index(s.spec.role) > rank]
        if later:
            raise RecipeError(where, step.line, f"step '{step.name}' cannot come after "
                              f"'{later[0].name}' (line {later[0].line}); the order is read, "
                              "normalize/clean_spots/minus_log, a segmentation step, "
                              "postprocess, label, measure, write")
