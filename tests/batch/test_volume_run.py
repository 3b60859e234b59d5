"""Chunked runs end to end: OME-Zarr pyramids, resuming per chunk, the CLI, failures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

import niseg.batch._volume as volume_module
from niseg.batch import Recipe, run_volume
from niseg.batch._manifest import MANIFEST_NAME, file_digest
from niseg.io import read_image, write_image

RECIPE = """\
niseg_recipe: 1
name: blobs
steps:
  - read: {chunks: 20}
  - threshold: {method: manual, value: 0.52}
  - postprocess: {min_size: 5}
  - label
  - measure
  - write: {suffix: .zarr, multiscale: true}
"""


def _volume(tmp_path: Path, shape=(36, 40, 44)) -> Path:
    rng = np.random.default_rng(0)
    image = ndi.gaussian_filter(rng.random(shape), 2.0).astype(np.float32)
    return write_image(tmp_path / "v.zarr", image,
                       {"axes": "zyx", "pixel_size": [2.0, 1.0, 1.0], "unit": "um"})


def _digests(out: Path) -> dict[str, tuple[int, str]]:
    return {name: file_digest(out / name) for name in ("v.zarr", "v_objects.zarr",
                                                       "v_objects.csv")}


def test_multiscale_output_is_ome_zarr_read_back_by_read_image(inproc, tmp_path):
    import zarr

    report = run_volume(Recipe.from_yaml(RECIPE), _volume(tmp_path), tmp_path / "out",
                        client=inproc)
    assert report.done == ["v"]
    out = tmp_path / "out"
    group = zarr.open_group(str(out / "v.zarr"), mode="r")
    ome = group.attrs["ome"]
    assert ome["version"] == "0.5"
    (multiscale,) = ome["multiscales"]
    assert [a["name"] for a in multiscale["axes"]] == ["z", "y", "x"]
    assert multiscale["axes"][0] == {"name": "z", "type": "space", "unit": "micrometer"}
    paths = [d["path"] for d in multiscale["datasets"]]
    scales = [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]]
    assert paths == ["0", "1"]  # 36x40x44 -> 18x20x22 (below one chunk of 20)
    assert scales == [[2.0, 1.0, 1.0], [4.0, 2.0, 2.0]]
    assert group["0"].chunks == (20, 20, 20)
    seg, meta = read_image(out / "v.zarr")
    assert seg.shape == (36, 40, 44) and meta["axes"] == "zyx"
    assert meta["pixel_size"] == (2.0, 1.0, 1.0) and meta["unit"] == "um"
    assert meta["classes"] == ["background", "foreground"]
    for level, shape in ((1, (18, 20, 22)),):
        small, _ = read_image(f"{out / 'v.zarr'}::{level}")
        assert small.shape == shape
        step = 2 ** level
        np.testing.assert_array_equal(small, seg[::step, ::step, ::step])
    objects, _ = read_image(out / "v_objects.zarr")
    assert objects.dtype == np.int32 and objects.max() == report.rows["v"]["objects"] > 1
    # Nothing but the outputs and the run files is left.
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.jsonl", "measurements.csv", "measurements.json", "recipe.yaml", "v.zarr",
        "v_objects.csv", "v_objects.zarr"]


class _Killed(BaseException):
    """Stands in for a kill: nothing after it runs, nothing catches it."""


def test_resume_redoes_only_unrecorded_chunks_and_gives_identical_outputs(
        inproc, tmp_path, monkeypatch):
    path = _volume(tmp_path)
    recipe = Recipe.from_yaml(RECIPE)
    run_volume(recipe, path, tmp_path / "whole", client=inproc)
    expected = _digests(tmp_path / "whole")

    out = tmp_path / "killed"

    def killed(*args, **kwargs):
        raise _Killed

    monkeypatch.setattr(volume_module, "merge_labels", killed)
    with pytest.raises(_Killed):
        run_volume(recipe, path, out, client=inproc)
    monkeypatch.undo()
    assert not (out / "v.zarr").exists()  # no output appears before it is complete
    assert (out / ".v.work").is_dir()
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert len([k for k in keys if "#segment#" in k]) == 12
    # Forget three segmented chunks, damage a recorded one, leave a partial file behind.
    dropped = {"v#segment#0.0.0", "v#segment#1.1.0", "v#segment#0.1.2"}
    kept = [line for line, k in zip(lines, keys) if k not in dropped]
    (out / MANIFEST_NAME).write_text("\n".join(kept) + "\n{\"key\": \"v#segm")
    # (with postprocess min_size the segment phase writes raw.zarr; seg.zarr comes later)
    damaged = out / ".v.work" / "raw.zarr" / "c" / "1" / "0" / "1"
    damaged.write_bytes(damaged.read_bytes()[:5])
    partial = out / ".v.work" / "blocks" / ".0.0.1.1234abcd.partial.npz"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half")

    seen: list[str] = []
    with pytest.raises(ValueError, match="holds an earlier batch"):
        run_volume(recipe, path, out, client=inproc)
    report = run_volume(recipe, path, out, client=inproc, resume=True,
                        progress=lambda done, total, text: seen.append(text))
    assert report.done == ["v"]
    redone = {t.split(": ")[1].removesuffix(" done") for t in seen
              if "#segment#" in t and t.endswith(" done")}
    assert redone == dropped | {"v#segment#1.0.1"}
    assert not partial.exists() and not (out / ".v.work").exists()
    assert _digests(out) == expected

    # A finished input is skipped as a whole.
    again = run_volume(recipe, path, out, client=inproc, resume=True)
    assert again.skipped == ["v"] and again.done == []


@pytest.mark.slow  # a local cluster of worker processes, end to end: part of the full suite
def test_cli_run_with_worker_processes_and_without_torch(tmp_path, capsys):
    from cli_helpers import run
    from niseg.batch import open_client

    path = _volume(tmp_path, shape=(24, 30, 20))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.replace("multiscale: true", "multiscale: false"))
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff at all")
    status, _, err = run(capsys, "run", recipe, path, bad, "-o", tmp_path / "out", "-q")
    assert status == 1
    failed = [line for line in err.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "bad.tif" in failed[0]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(("bad", ".bad"))) == []
    seg, meta = read_image(out / "v.zarr")
    assert seg.shape == (24, 30, 20) and meta["classes"] == ["background", "foreground"]
    table = json.loads((out / "measurements.json").read_text())
    assert [f["key"] for f in table["files"]] == ["v"]
    assert [f["key"] for f in table["failed"]] == ["bad"]

    client, cluster = open_client(workers=1)
    try:
        run_volume(Recipe.from_yaml(RECIPE), path, tmp_path / "procs", client=client)
        assert list(client.run(lambda: "torch" in sys.modules).values()) == [False]
    finally:
        client.close()
        cluster.close()
    first, _ = read_image(tmp_path / "procs" / "v.zarr")
    np.testing.assert_array_equal(first, seg)
