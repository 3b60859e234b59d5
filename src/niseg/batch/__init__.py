"""Recipes: the same segmentation applied to many inputs, consistently and with provenance.

A recipe is a small YAML file of registered steps (read, normalize, clean spots, threshold /
cluster / classify, post-process, label, measure, write), validated completely before
anything runs (:func:`load_recipe`, :class:`Recipe`; :func:`list_steps` lists every step and
parameter). Running one (see ``docs/batch.md``):

- :func:`prepare_state` loads what every input needs once (reference frames, the model's
  checksum); :func:`fit_global` also fits a ``fit: global`` step (threshold levels) on all
  inputs, from per-input samples (:func:`global_sample`, :func:`fit_global_from_samples`);
- :func:`read_input` and :func:`apply_recipe` process one input into a
  :class:`RecipeResult`; :func:`output_keys`, :func:`planned_outputs` and
  :func:`write_result` name and write its outputs;
- :func:`run_recipe_serial` does all of this in one process, with ``recipe.yaml`` and
  ``measurements.csv``/``.json`` beside the outputs; :func:`run_recipe` does it on Dask
  workers (a local cluster on 127.0.0.1 or an existing one), resumably: :func:`run_tasks`
  runs any work function over inputs and records finished ones in a :class:`Manifest`;
- :func:`run_volume` (what :func:`run_recipe` calls for ``read: {chunks: ...}``) runs a
  recipe over volumes larger than memory, chunk by chunk, with results equal to the
  in-memory ones and Zarr (optionally OME-Zarr multiscale) outputs.

Recipes and states are plain picklable data, so a runner can hand them to Dask workers.
"""

from ._batch import run_recipe
from ._manifest import Manifest
from ._recipe import RECIPE_VERSION, Recipe, RecipeError, Step, load_recipe
from ._runner import BatchReport, BatchTask, TaskResult, open_client, run_tasks
from ._steps import list_steps
from ._steps_output import output_keys, planned_outputs, run_recipe_serial, write_result
from ._steps_run import (
    RecipeResult,
    apply_recipe,
    fit_global,
    fit_global_from_samples,
    global_sample,
    prepare_state,
    read_input,
    state_summary,
)
from ._volume import run_volume

__all__ = [
    "RECIPE_VERSION",
    "BatchReport",
    "BatchTask",
    "Manifest",
    "Recipe",
    "RecipeError",
    "RecipeResult",
    "Step",
    "TaskResult",
    "apply_recipe",
    "fit_global",
    "fit_global_from_samples",
    "global_sample",
    "list_steps",
    "load_recipe",
    "open_client",
    "output_keys",
    "planned_outputs",
    "prepare_state",
    "read_input",
    "run_recipe",
    "run_recipe_serial",
    "run_tasks",
    "run_volume",
    "state_summary",
    "write_result",
]
