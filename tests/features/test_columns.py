"""compute_features(columns=...) and the halo of a subset of columns."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.features import FeatureSpec, _filters, compute_features

FULL = FeatureSpec(filters=("gaussian", "log", "gradient", "dog", "structure", "hessian"),
                   scales=(0.7, 1.6, 3.0), local_stats=("mean", "variance", "median"),
                   window=3, neighbourhood=1)


def noisy(shape, seed=0, channels=None):
    rng = np.random.default_rng(seed)
    full = shape if channels is None else shape + (channels,)
    return (rng.normal(100, 20, full) + rng.integers(0, 2, full) * 50).astype(np.float32)


@pytest.mark.parametrize(("shape", "channels"), [((40, 36), None), ((14, 18, 16), None),
                                                 ((30, 28), 2)])
def test_columns_equal_full_then_slice(shape, channels):
    image = noisy(shape, channels=channels)
    axis = None if channels is None else -1
    spec = FeatureSpec(**{**FULL.to_dict(), "position": True})
    full = compute_features(image, spec, channel_axis=axis, origin=(3,) * len(shape))
    n = full.shape[-1]
    assert n == spec.n_features(channels or 1, len(shape))
    rng = np.random.default_rng(1)
    for columns in ([0], [n - 1, 0, 5], list(rng.permutation(n)[: n // 3]), [7, 7, 2],
                    list(range(n))):
        part = compute_features(image, spec, channel_axis=axis, columns=columns,
                                origin=(3,) * len(shape), n_threads=2)
        assert part.shape == shape + (len(columns),) and part.dtype == np.float32
        np.testing.assert_array_equal(part, full[..., columns])


def test_unused_groups_are_not_computed(monkeypatch):
    image = noisy((32, 32))
    spec = FeatureSpec.preset("ilastik")
    names = spec.names()
    calls = {"eig": 0, "sigmas": []}
    real_eig = _filters.symmetric_eigenvalues
    real_deriv = _filters.gaussian_derivative

    def eig(elems):
        calls["eig"] += 1
        return real_eig(elems)

    def deriv(image, sigma, order, relative):
        calls["sigmas"].append((float(np.max(sigma)), tuple(order)))
        return real_deriv(image, sigma, order, relative)

    monkeypatch.setattr(_filters, "symmetric_eigenvalues", eig)
    monkeypatch.setattr(_filters, "gaussian_derivative", deriv)
    gaussian = [i for i, name in enumerate(names) if name.startswith("gaussian")]
    compute_features(image, spec, columns=gaussian)
    assert calls["eig"] == 0
    assert all(order == (0, 0) for _, order in calls["sigmas"])
    assert len(calls["sigmas"]) == len(spec.scales)

    calls["sigmas"].clear()
    hessian_1 = names.index("hessian s=1 e2")
    compute_features(image, spec, columns=[0, hessian_1])
    assert calls["eig"] == 1
    # three second derivatives at sigma 1 only; no Hessian at scale 10 was computed
    assert sorted(calls["sigmas"]) == [(1.0, (0, 2)), (1.0, (1, 1)), (1.0, (2, 0))]


def test_halo_of_a_subset():
    spec = FeatureSpec.preset("ilastik")
    names = spec.names()
    assert spec.halo_per_axis(None, 2) == (64, 64) == (spec.halo,) * 2
    assert spec.halo_per_axis(None, 2, columns=[names.index("raw")]) == (0, 0)
    small = [names.index(n) for n in ("gaussian s=1", "hessian s=1.6 e1", "log s=0.7")]
    assert spec.halo_per_axis(None, 2, columns=small) == (6, 6)
    assert spec.halo_per_axis(None, 2, columns=[names.index("dog s=5")]) == (32, 32)
    assert spec.halo_per_axis(None, 2, columns=[names.index("structure s=3.5 e2")]) == (
        14 + 7, 14 + 7)
    assert spec.halo_per_axis((2.0, 1.0), 2, columns=small) == (3, 6)
    shifts = FeatureSpec(filters=(), neighbourhood=2, raw=False)
    shift_names = shifts.names(2, 2)
    assert shifts.halo_per_axis(None, 2, columns=[shift_names.index("ch2 shift 0,1")],
                                n_channels=2) == (0, 1)


@pytest.mark.parametrize("ndim", [2, 3])
def test_subset_is_exact_on_crops_padded_by_its_halo(ndim):
    shape = (48, 44) if ndim == 2 else (22, 24, 20)
    image = noisy(shape, seed=2)
    spec = FULL
    names = spec.names(1, ndim)
    columns = [names.index(n) for n in names
               if n.startswith(("raw", "hessian s=0.7", "gradient s=1.6", "variance", "shift"))]
    halo = spec.halo_per_axis(None, ndim, columns=columns)
    assert max(halo) < spec.halo
    full = compute_features(image, spec, columns=columns)
    core = tuple(slice(h + 2, h + 6) for h in halo)
    read = tuple(slice(c.start - h, c.stop + h) for c, h in zip(core, halo))
    crop = compute_features(image[read], spec, columns=columns)
    inner = tuple(slice(h, h + 4) for h in halo)
    np.testing.assert_array_equal(crop[inner], full[core])


def test_column_errors():
    image = noisy((16, 16))
    spec = FeatureSpec.preset("fast")
    with pytest.raises(ValueError, match=r"columns must be indices in 0\.\.9"):
        compute_features(image, spec, columns=[0, 10])
    with pytest.raises(ValueError, match="columns is empty"):
        compute_features(image, spec, columns=[])
    with pytest.raises(TypeError, match="columns must be a sequence of integers"):
        compute_features(image, spec, columns=[0.5])
    with pytest.raises(ValueError, match="columns must be indices"):
        spec.halo_per_axis(None, 2, columns=[-1])
