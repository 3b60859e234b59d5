"""read_labels: napari TIFFs, ilastik HDF5 exports and .ilp projects, and bad label files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import tifffile

from niseg.io import read_labels, write_image

_FLAGS = {"t": 8, "z": 2, "y": 2, "x": 2, "c": 1}  # vigra's type flags: space 2, channel 1


def axistags(letters: str) -> str:
    """The JSON ilastik (vigra) writes into an 'axistags' attribute."""
    return json.dumps({"axes": [{"key": k, "typeFlags": _FLAGS[k], "resolution": 0,
                                 "description": ""} for k in letters]}, indent=2)


def strokes(shape=(20, 30), seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint8)
    labels[rng.random(shape) < 0.05] = 1
    labels[rng.random(shape) < 0.05] = 2
    labels[(slice(None),) * (len(shape) - 1) + (3,)] = 3
    return labels


def test_napari_tiff_2d_and_3d(tmp_path):
    labels = strokes()
    tifffile.imwrite(tmp_path / "l2.tif", labels.astype(np.int32))
    out = read_labels(tmp_path / "l2.tif", shape=labels.shape)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, labels)
    volume = strokes((6, 20, 30))
    tifffile.imwrite(tmp_path / "l3.tif", volume.astype(np.int64))  # napari 3-D labels
    out = read_labels(str(tmp_path / "l3.tif"))
    assert out.shape == (6, 20, 30)
    np.testing.assert_array_equal(out, volume)


def test_png_npy_and_large_values(tmp_path):
    labels = strokes()
    write_image(tmp_path / "l.png", labels)
    np.testing.assert_array_equal(read_labels(tmp_path / "l.png"), labels)
    big = labels.astype(np.int64) * 300
    np.save(tmp_path / "big.npy", big)
    out = read_labels(tmp_path / "big.npy", shape=(20, 30))
    assert out.dtype == np.uint16 and int(out.max()) == 900
    floats = labels.astype(np.float32)
    np.save(tmp_path / "f.npy", floats)
    assert read_labels(tmp_path / "f.npy").dtype == np.uint8
    # A trailing channel of length 1 is dropped to match the image.
    np.save(tmp_path / "c.npy", labels[..., None])
    np.testing.assert_array_equal(read_labels(tmp_path / "c.npy", shape=(20, 30)), labels)


@pytest.mark.parametrize("letters", ["yxc", "xyc", "cyx"])
def test_ilastik_h5_export_2d(tmp_path, letters):
    labels = strokes()
    stored = labels[..., None]  # y, x, c
    stored = np.transpose(stored, ["yxc".index(a) for a in letters])
    path = tmp_path / "export.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("exported_data", data=stored)
        ds.attrs["axistags"] = axistags(letters)
    np.testing.assert_array_equal(read_labels(path, shape=(20, 30)), labels)
    np.testing.assert_array_equal(read_labels(f"{path}::/exported_data"), labels)


def test_ilastik_h5_export_3d_and_time(tmp_path):
    volume = strokes((5, 20, 30))
    path = tmp_path / "export.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("exported_data", data=np.transpose(volume, (2, 1, 0))[..., None])
        ds.attrs["axistags"] = axistags("xyzc")
        ds = f.create_dataset("with_t", data=volume[None, ..., None])
        ds.attrs["axistags"] = axistags("tzyxc")
    np.testing.assert_array_equal(read_labels(f"{path}::exported_data"), volume)
    np.testing.assert_array_equal(read_labels(f"{path}::/with_t", shape=(5, 20, 30)), volume)
    with pytest.raises(ValueError, match="several image datasets"):
        read_labels(path)


def _ilp(path, blocks, letters=None, lane=0):
    with h5py.File(path, "a") as f:
        f["ilastikVersion"] = b"1.4.0"
        group = f.require_group(f"PixelClassification/LabelSets/labels{lane:03d}")
        for i, (slicing, data) in enumerate(blocks):
            text = "[" + ",".join(f"{a}:{b}" for a, b in slicing) + "]"
            ds = group.create_dataset(f"block{i:04d}", data=data)
            ds.attrs["blockSlice"] = text.encode("utf-8")
        if letters is not None:
            f[f"Input Data/infos/lane{lane:04d}/Raw Data/axistags"] = axistags(letters)


def test_ilastik_project_2d(tmp_path):
    path = tmp_path / "project.ilp"
    a = np.array([[1, 1, 0], [0, 2, 2]], np.uint8)[..., None]
    b = np.full((4, 2, 1), 2, np.uint8)
    _ilp(path, [([(3, 5), (4, 7), (0, 1)], a), ([(10, 14), (0, 2), (0, 1)], b)], "yxc")
    labels = read_labels(path, shape=(16, 12))
    assert labels.shape == (16, 12) and labels.dtype == np.uint8
    expected = np.zeros((16, 12), np.uint8)
    expected[3:5, 4:7] = a[..., 0]
    expected[10:14, 0:2] = 2
    np.testing.assert_array_equal(labels, expected)
    with pytest.raises(ValueError, match="needs shape"):
        read_labels(path)
    with pytest.raises(ValueError, match=r"reach 14 along axis y"):
        read_labels(path, shape=(12, 12))


def test_ilastik_project_3d_xy_order_masked_and_lanes(tmp_path):
    path = tmp_path / "project.ilp"
    block = np.zeros((3, 2, 4, 1), np.uint8)  # x, y, z, c
    block[0, 1, 2, 0] = 1
    block[2, 0, 3, 0] = 2
    _ilp(path, [([(1, 4), (5, 7), (0, 4), (0, 1)], block)], "xyzc")
    labels = read_labels(path, shape=(6, 8, 10))  # z, y, x
    assert labels.shape == (6, 8, 10)
    assert labels[2, 6, 1] == 1 and labels[3, 5, 3] == 2 and int((labels > 0).sum()) == 2
    # A second lane, without recorded axes (ilastik's y, x, c) and a masked block.
    with h5py.File(path, "a") as f:
        group = f.require_group("PixelClassification/LabelSets/labels001")
        masked = group.create_group("block0000")
        masked.create_dataset("data", data=np.full((2, 2, 1), 3, np.uint8))
        masked.create_dataset("mask", data=np.zeros((2, 2, 1), bool))
        masked.attrs["blockSlice"] = "[1:3,1:3,0:1]"
    second = read_labels(f"{path}::1", shape=(4, 4))
    assert int(second.sum()) == 12 and second[1, 1] == 3
    with pytest.raises(ValueError, match="label sets"):
        read_labels(f"{path}::7", shape=(4, 4))
    with pytest.raises(ValueError, match="spatial axes"):
        read_labels(path, shape=(8, 10))


def test_bad_label_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_labels(tmp_path / "missing.tif")
    np.save(tmp_path / "neg.npy", np.array([[0, -1], [1, 2]], np.int16))
    with pytest.raises(ValueError, match="negative"):
        read_labels(tmp_path / "neg.npy")
    np.save(tmp_path / "frac.npy", np.array([[0, 0.5], [1, 2]], np.float32))
    with pytest.raises(ValueError, match="fractional"):
        read_labels(tmp_path / "frac.npy")
    np.save(tmp_path / "nan.npy", np.array([[0, np.nan], [1, 2]], np.float32))
    with pytest.raises(ValueError, match="NaN"):
        read_labels(tmp_path / "nan.npy")
    labels = strokes()
    tifffile.imwrite(tmp_path / "l.tif", labels)
    with pytest.raises(ValueError, match=r"shape \(20, 30\) but the image has shape \(20, 31\)"):
        read_labels(tmp_path / "l.tif", shape=(20, 31))
    rgb = np.stack([labels, labels * 2, labels], -1)
    write_image(tmp_path / "rgb.png", rgb, {"axes": "yxc"})
    with pytest.raises(ValueError, match="3 channels"):
        read_labels(tmp_path / "rgb.png")
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.create_dataset("exported_data", data=labels).attrs["axistags"] = "not json"
    with pytest.raises(ValueError, match="axistags"):
        read_labels(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "empty.ilp", "w") as f:
        f["ilastikVersion"] = b"1.4.0"
    with pytest.raises(ValueError, match="no pixel classification labels"):
        read_labels(tmp_path / "empty.ilp", shape=(4, 4))
    with pytest.raises(TypeError, match="shape"):
        read_labels(tmp_path / "l.tif", shape="big")
