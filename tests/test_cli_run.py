"""`niseg run`: a recipe over several files on a local cluster or an existing scheduler."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import assert_user_error, run
from niseg.io import read_image, write_image

RECIPE = """\
niseg_recipe: 1
name: bright squares
steps:
  - threshold: {method: otsu, fit: global}
  - postprocess: {min_size: 4}
  - measure: {}
  - write: {}
"""


def _inputs(folder: Path, n: int = 4) -> list[Path]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        image = rng.normal(10.0, 1.0, (40, 40)).astype(np.float32)
        image[5:15, 5:15 + i] += 20.0
        image[25:33, 20:30] += 20.0
        paths.append(write_image(folder / f"s{i}.tif", image))
    return paths


@pytest.fixture
def setup(tmp_path):
    inputs = _inputs(tmp_path / "in")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    return tmp_path, recipe, inputs


def test_run_writes_mirrored_outputs_and_a_table(setup, capsys):
    tmp, recipe, _ = setup
    status, _, err = run(capsys, "run", recipe, tmp / "in", "-o", tmp / "out", "--workers", 2,
                         "-q")
    assert status == 0, err
    out = tmp / "out"
    for i in range(4):
        labels, _ = read_image(out / f"s{i}.tif")
        assert labels.dtype == np.uint8 and labels[10, 10] == 1 and labels[0, 0] == 0
    with open(out / "measurements.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["key"] for r in rows] == ["s0", "s1", "s2", "s3"]
    assert all(r["objects"] == "2" for r in rows)
    summary = json.loads((out / "measurements.json").read_text())
    assert summary["failed"] == [] and len(summary["global"]["threshold"]["levels"]) == 1
    assert "\nniseg_recipe: 1\nname: bright squares\n" in (out / "recipe.yaml").read_text()
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 4


def test_failed_input_is_reported_and_the_rest_finish(setup, capsys):
    tmp, recipe, _ = setup
    (tmp / "in" / "s9.tif").write_text("not an image")
    status, _, err = run(capsys, "run", recipe, tmp / "in", "-o", tmp / "out", "-q")
    assert status == 1
    assert "failed: " in err and "s9.tif" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp / "out").glob("s?.tif")) == [f"s{i}.tif" for i in range(4)]
    failed = json.loads((tmp / "out" / "measurements.json").read_text())["failed"]
    assert [f["key"] for f in failed] == ["s9"]


def test_resume_redoes_only_what_is_missing(setup, capsys):
    tmp, recipe, _ = setup
    out = tmp / "out"
    assert run(capsys, "run", recipe, tmp / "in", "-o", out, "-q")[0] == 0
    before = {p.name: p.read_bytes() for p in out.glob("s?.tif")}
    status, _, err = run(capsys, "run", recipe, tmp / "in", "-o", out, "-q")
    assert_user_error(status, err, "earlier batch", "--resume")
    (out / "s2.tif").unlink()
    status, _, err = run(capsys, "run", recipe, tmp / "in", "-o", out, "--resume")
    assert status == 0 and "1 done, 3 already done, 0 failed" in err
    assert {p.name: p.read_bytes() for p in out.glob("s?.tif")} == before


def test_bad_recipe_is_a_user_error_and_writes_nothing(setup, capsys):
    tmp, recipe, _ = setup
    recipe.write_text(RECIPE.replace("threshold:", "thresold:"))
    status, _, err = run(capsys, "run", recipe, tmp / "in", "-o", tmp / "out")
    assert_user_error(status, err, "line 4", "thresold")
    assert not (tmp / "out").exists()
    recipe.write_text(RECIPE)
    status, _, err = run(capsys, "run", recipe, tmp / "in", "-o", tmp / "out", "--workers", 0)
    assert_user_error(status, err, "--workers")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_run_through_an_existing_scheduler(setup, capsys):
    tmp, recipe, _ = setup
    dask = shutil.which("dask") or str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler_file = tmp / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "error"}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1",
                                       "--host", "127.0.0.1", "--no-dashboard"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        status, _, err = run(capsys, "run", recipe, tmp / "in", "-o", tmp / "out",
                             "--scheduler", address, "-q")
        assert status == 0, err
        assert len(list((tmp / "out").glob("s?.tif"))) == 4
        status, _, err = run(capsys, "run", recipe, tmp / "in", "-o", tmp / "out2",
                             "--scheduler-file", scheduler_file, "-q")
        assert status == 0, err
        for i in range(4):
            assert (tmp / "out" / f"s{i}.tif").read_bytes() == (
                tmp / "out2" / f"s{i}.tif").read_bytes()
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
