import pickle

import dask.array as da
import numpy as np
import pytest
import zarr

from niseg.io import read_image, write_image


def test_zarr_round_trip_with_metadata_and_chunks(tmp_path):
    volume = np.random.default_rng(0).random((3, 300, 20)).astype(np.float32)
    meta_in = {
        "axes": "tyx",
        "pixel_size": (0.1, 0.1),
        "unit": "mm",
        "exposure_time": 5.0,
        "classes": ["a"],
        "operator": "me",
        "header": {"beamline": "ICON"},
    }
    out = write_image(tmp_path / "v.zarr", volume, meta_in)
    assert out.is_dir()
    arr = zarr.open(str(out), mode="r")
    assert arr.metadata.zarr_format == 3
    assert arr.chunks == (1, 256, 20)
    assert arr.attrs["niseg"]["axes"] == "tyx"
    back, meta = read_image(out)
    np.testing.assert_array_equal(back, volume)
    assert meta["axes"] == "tyx" and meta["pixel_size"] == (0.1, 0.1) and meta["unit"] == "mm"
    assert meta["exposure_time"] == 5.0 and meta["classes"] == ["a"] and meta["operator"] == "me"
    assert meta["header"] == {"beamline": "ICON"}


def test_zarr_lazy_is_dask_and_reads_at_compute_time(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6)
    write_image(tmp_path / "l.zarr", data)
    lazy, meta = read_image(tmp_path / "l.zarr", lazy=True)
    assert isinstance(lazy, da.Array)
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is True
    # Overwrite the stored values after read_image returned: compute must see the new ones.
    store = zarr.open(str(tmp_path / "l.zarr"), mode="r+")
    store[...] = data * 10
    np.testing.assert_array_equal(lazy.compute(), data * 10)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lazy)).compute(), data * 10)


def test_zarr_group_selector(tmp_path):
    data = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_image(str(tmp_path / "g.zarr") + "::scans/raw", data, {"note": "n"})
    back, meta = read_image(str(tmp_path / "g.zarr") + "::scans/raw")
    np.testing.assert_array_equal(back, data)
    assert meta["dataset"] == "scans/raw" and meta["note"] == "n"
    back, _ = read_image(tmp_path / "g.zarr")  # the only array in the group
    np.testing.assert_array_equal(back, data)
    lazy, _ = read_image(str(tmp_path / "g.zarr") + "::scans/raw", lazy=True)
    np.testing.assert_array_equal(lazy.compute(), data)
    with pytest.raises(
        ValueError, match=r"cannot read '.*g\.zarr::nothing': the store holds no array"
    ):
        read_image(str(tmp_path / "g.zarr") + "::nothing")


def test_zarr_group_with_several_arrays_lists_them(tmp_path):
    group = zarr.open_group(str(tmp_path / "m.zarr"), mode="w")
    group.create_array("a", shape=(2, 2), dtype="u1")
    group.create_array("b", shape=(2, 2), dtype="u1")
    with pytest.raises(ValueError, match=r"several arrays.*a, b"):
        read_image(tmp_path / "m.zarr")


def test_ome_zarr_first_level_with_scale(tmp_path):
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    level0 = group.create_array("0", shape=(2, 4, 6), dtype="u2")
    level0[...] = 3
    group.create_array("1", shape=(2, 2, 3), dtype="u2")
    group.attrs["multiscales"] = [
        {
            "axes": [
                {"name": "z", "type": "space", "unit": "micrometer"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.5, 0.5]}],
                },
                {
                    "path": "1",
                    "coordinateTransformations": [{"type": "scale", "scale": [2.0, 1.0, 1.0]}],
                },
            ],
        }
    ]
    back, meta = read_image(tmp_path / "ome.zarr")
    assert back.shape == (2, 4, 6) and back[0, 0, 0] == 3
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is False
    assert meta["pixel_size"] == (2.0, 0.5, 0.5) and meta["unit"] == "um"


def test_dask_array_written_to_zarr_chunkwise(tmp_path):
    data = da.arange(600, dtype=np.float64, chunks=77).reshape(20, 30)
    write_image(tmp_path / "d.zarr", data)
    back, _ = read_image(tmp_path / "d.zarr")
    np.testing.assert_array_equal(back, np.arange(600, dtype=np.float64).reshape(20, 30))


def test_existing_zarr_is_refused_then_replaced(tmp_path):
    write_image(tmp_path / "a.zarr", np.zeros((2, 2), np.uint8))
    with pytest.raises(FileExistsError):
        write_image(tmp_path / "a.zarr", np.ones((2, 2), np.uint8))
    write_image(tmp_path / "a.zarr", np.ones((2, 2), np.uint8), overwrite=True)
    back, _ = read_image(tmp_path / "a.zarr")
    assert back.tolist() == [[1, 1], [1, 1]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]


def test_broken_zarr_store_is_a_clear_error(tmp_path):
    (tmp_path / "bad.zarr").mkdir()
    (tmp_path / "bad.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(
        ValueError, match=r"cannot read '.*bad\.zarr': the folder is not a valid Zarr store"
    ):
        read_image(tmp_path / "bad.zarr")
