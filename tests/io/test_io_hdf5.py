import pickle

import dask.array as da
import h5py
import numpy as np
import pytest

from niseg.io import read_image, read_nxtomo, write_image


def _nxtomo(path, *, with_angles=True, link=True):
    """A small NXtomo scan: 2 darks, 2 flats, 5 projections, 1 more flat at the end."""
    keys = np.array([2, 2, 1, 1, 0, 0, 0, 0, 0, 1])
    frames = np.stack([np.full((4, 6), 10 * k + i, np.uint16) for i, k in enumerate(keys)])
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry"
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        det = entry.create_group("instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det.create_dataset("data", data=frames, chunks=(1, 4, 6))
        det.create_dataset("image_key", data=keys)
        det.create_dataset("count_time", data=np.full(keys.size, 0.8))
        det.create_dataset("x_pixel_size", data=6.5).attrs["units"] = "micrometer"
        det.create_dataset("y_pixel_size", data=6.5).attrs["units"] = "micrometer"
        sample = entry.create_group("sample")
        if with_angles:
            angles = np.concatenate([[0, 0, 0, 0], np.linspace(0, 180, 5), [180]])
            sample.create_dataset("rotation_angle", data=angles).attrs["units"] = "degree"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "data"
        if link:
            data["data"] = det["data"]
            data["image_key"] = det["image_key"]
        f.create_dataset("entry/title", data="scan")
    return frames, keys


def test_nxtomo_read_image_gives_projections_only(tmp_path):
    frames, keys = _nxtomo(tmp_path / "scan.nxs")
    proj, meta = read_image(tmp_path / "scan.nxs")
    np.testing.assert_array_equal(proj, frames[keys == 0])
    assert meta["axes"] == "tyx" and meta["axes_guessed"] is False
    assert meta["nxtomo"] == {"n_projections": 5, "n_flats": 3, "n_darks": 2}
    assert meta["rotation_angle"] == pytest.approx([0, 45, 90, 135, 180])
    assert meta["rotation_angle_unit"] == "degree"
    assert meta["pixel_size"] == (6.5, 6.5) and meta["unit"] == "um"
    assert meta["exposure_time"] == 0.8
    lazy, lazy_meta = read_image(tmp_path / "scan.nxs", lazy=True)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), proj)
    assert lazy_meta["nxtomo"] == meta["nxtomo"]


def test_read_nxtomo_splits_projections_flats_darks(tmp_path):
    frames, keys = _nxtomo(tmp_path / "scan.h5")
    scan = read_nxtomo(tmp_path / "scan.h5")
    np.testing.assert_array_equal(scan["projections"], frames[keys == 0])
    np.testing.assert_array_equal(scan["flats"], frames[keys == 1])
    np.testing.assert_array_equal(scan["darks"], frames[keys == 2])
    np.testing.assert_allclose(scan["rotation_angle"], [0, 45, 90, 135, 180])
    assert scan["metadata"]["axes"] == "tyx"
    assert scan["metadata"]["nxtomo"] == {"n_projections": 5, "n_flats": 3, "n_darks": 2}
    assert scan["metadata"]["source"] == str((tmp_path / "scan.h5").resolve())


def test_read_nxtomo_without_darks_or_angles(tmp_path):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("entry/data/data", data=np.zeros((3, 2, 2), np.float32))
        f.create_dataset("entry/data/image_key", data=[1, 0, 0])
    scan = read_nxtomo(tmp_path / "s.h5")
    assert scan["darks"].shape == (0, 2, 2) and scan["flats"].shape == (1, 2, 2)
    assert scan["projections"].shape == (2, 2, 2)
    assert scan["rotation_angle"] is None


def test_read_nxtomo_refuses_a_file_without_image_key(tmp_path):
    write_image(tmp_path / "plain.h5", np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"cannot read '.*plain\.h5' as NXtomo: no image_key"):
        read_nxtomo(tmp_path / "plain.h5")


def test_hdf5_selector_and_metadata_round_trip(tmp_path):
    image = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    meta_in = {
        "axes": "zyx",
        "pixel_size": (1.0, 0.5, 0.5),
        "unit": "mm",
        "exposure_time": 2.0,
        "classes": ["a", "b"],
        "extra": {"k": [1, 2]},
        "note": "x",
    }
    written = write_image(str(tmp_path / "v.h5") + "::/entry/volume", image, meta_in)
    assert written == tmp_path / "v.h5"
    back, meta = read_image(str(tmp_path / "v.h5") + "::/entry/volume")
    np.testing.assert_array_equal(back, image)
    assert meta["dataset"] == "/entry/volume"
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is False
    assert meta["pixel_size"] == (1.0, 0.5, 0.5) and meta["unit"] == "mm"
    assert meta["exposure_time"] == 2.0 and meta["classes"] == ["a", "b"]
    assert meta["extra"] == {"k": [1, 2]} and meta["note"] == "x"
    # Without a selector the only dataset is read.
    back, _ = read_image(tmp_path / "v.h5")
    np.testing.assert_array_equal(back, image)
    with h5py.File(tmp_path / "v.h5") as f:
        assert f["entry/volume"].attrs["axes"] == "zyx"
        assert f["entry/volume"].chunks is not None


def test_hdf5_default_dataset_is_data(tmp_path):
    write_image(tmp_path / "a.hdf5", np.ones((2, 3), np.int16))
    with h5py.File(tmp_path / "a.hdf5") as f:
        assert list(f) == ["data"]


def test_hdf5_foreign_attributes_go_to_header(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        ds = f.create_dataset("img", data=np.zeros((2, 3)))
        ds.attrs["units"] = "counts"
        ds.attrs["gain"] = np.float32(2.0)
    _, meta = read_image(tmp_path / "f.h5")
    assert meta["header"] == {"units": "counts", "gain": 2.0}


def test_hdf5_several_datasets_need_a_selector(tmp_path):
    with h5py.File(tmp_path / "m.h5", "w") as f:
        for name in ["a", "b", "c", "d", "e", "f"]:
            f.create_dataset(f"g/{name}", data=np.zeros((2, 2)))
    with pytest.raises(
        ValueError, match=r"several image datasets.*/g/a, /g/b, /g/c, /g/d, /g/e, \.\.\."
    ):
        read_image(tmp_path / "m.h5")
    with pytest.raises(
        ValueError, match=r"cannot read '.*m\.h5::/nowhere': '/nowhere' is not in the file"
    ):
        read_image(str(tmp_path / "m.h5") + "::/nowhere")
    with pytest.raises(ValueError, match=r"'/g' is a group"):
        read_image(str(tmp_path / "m.h5") + "::/g")


def test_hdf5_nexus_default_wins_among_several(tmp_path):
    with h5py.File(tmp_path / "n.nxs", "w") as f:
        f.attrs["default"] = "entry"
        entry = f.create_group("entry")
        entry.attrs["default"] = "plot"
        plot = entry.create_group("plot")
        plot.attrs["signal"] = "counts"
        plot.create_dataset("counts", data=np.full((2, 2), 7))
        entry.create_dataset("other", data=np.zeros((3, 3)))
    back, meta = read_image(tmp_path / "n.nxs")
    assert back.tolist() == [[7, 7], [7, 7]] and meta["dataset"] == "/entry/plot/counts"


def test_hdf5_lazy_keeps_working_after_return_and_pickles(tmp_path):
    image = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
    write_image(tmp_path / "l.h5", image)
    lazy, _ = read_image(tmp_path / "l.h5", lazy=True)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), image)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lazy)).compute(), image)


def test_hdf5_dask_write(tmp_path):
    data = da.ones((5, 6, 7), dtype=np.float32, chunks=(2, 3, 7))
    write_image(tmp_path / "d.h5", data * 3)
    back, _ = read_image(tmp_path / "d.h5")
    np.testing.assert_array_equal(back, np.full((5, 6, 7), 3, np.float32))


def test_existing_hdf5_is_replaced_only_with_overwrite(tmp_path):
    write_image(tmp_path / "a.h5::/one", np.zeros((2, 2)))
    with pytest.raises(FileExistsError):
        write_image(tmp_path / "a.h5::/two", np.zeros((2, 2)))
    write_image(str(tmp_path / "a.h5") + "::/two", np.ones((2, 2)), overwrite=True)
    with h5py.File(tmp_path / "a.h5") as f:
        assert list(f) == ["two"]


def test_garbage_h5_is_a_clear_error(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"garbage" * 50)
    with pytest.raises(
        ValueError, match=r"cannot read '.*bad\.h5': the file is truncated or not a valid HDF5"
    ):
        read_image(tmp_path / "bad.h5")
