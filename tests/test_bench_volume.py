"""benchmarks/bench_volume.py in quick mode: the table's figures and the exactness checks."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import bench_volume


def test_phantom_slabs_join_into_the_whole_volume():
    spheres, rods = bench_volume._objects(40, 0)
    whole = bench_volume.phantom_slab(40, 0, 40, spheres, rods)
    parts = np.concatenate([bench_volume.phantom_slab(40, z, min(z + 16, 40), spheres, rods)
                            for z in range(0, 40, 16)])
    np.testing.assert_array_equal(whole, parts)
    assert 0.01 < float((whole >= 0.5).mean()) < 0.5


@pytest.mark.slow  # a whole benchmark run, 45 s: part of the full suite
def test_quick_run_prints_memory_time_and_equality(tmp_path, capsys):
    assert bench_volume.main(["--quick", "--json", str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert re.search(r"\| 1 32\^3 uint16, chunks 24\^3.*\| peak memory \(all processes\) "
                     r"\|\s+\d+\.\d\d GB \|", text)
    assert re.search(r"wall time \(niseg run\)\s+\|\s+\d+\.\d s", text)
    assert re.search(r"\| 2 32\^3 whole volume\s+\| equal to in-memory\s+\|\s+yes", text)
    assert re.search(r"\| 2 48\^3 24\^3 box across chunk corners\s+\| equal to in-memory\s+"
                     r"\|\s+yes", text)
    assert re.search(r"peak memory ratio\s+\|\s+\d+\.\d\dx \| volume 3\.38x\s+\|", text)
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    first, second = results["runs"]
    assert first["labels_equal"] and first["segmentation_equal"]
    assert second["segmentation_equal"] and second["differing_voxels"] == 0
    assert 0 < first["peak_bytes"] < 2 * 1024**3 and first["objects"] > 0
    assert second["box"] == [[12, 36]] * 3  # around the chunk corner at 24
