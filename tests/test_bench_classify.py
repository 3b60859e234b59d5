"""Smoke tests of the helpers of benchmarks/bench_classify.py and bench_classify_memory.py on
small synthetic images (the scripts themselves run on the real EM data and take minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_classify as bc
import bench_classify_memory as bm


def _scene(shape=(48, 96), seed=0):
    """Bright noisy discs on a dark noisy background, and their 0/1 mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.zeros(shape, np.uint8)
    for cy, cx in [(12, 12), (34, 30), (14, 60), (36, 80)]:
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= 64] = 1
    image = (60 + 120 * truth + rng.normal(0, 15, shape)).clip(0, 255).astype(np.uint8)
    return image, truth


def test_dice_right_uses_only_the_right_half():
    truth = np.zeros((4, 8), np.uint8)
    truth[:, 6:] = 1
    pred = np.zeros((4, 8), bool)
    pred[:, :4] = True  # wrong everywhere on the left: must not count
    pred[:2, 6:] = True
    assert bc.dice_right(pred, truth, split=4) == pytest.approx(2 * 4 / (8 + 4))


def test_sparse_labels_cover_about_the_fraction_of_each_class():
    _, truth = _scene((96, 192))
    labels, covered = bc.sparse_labels(truth, fraction=0.05, seed=1)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert np.all(truth[labels == 2] == 1) and np.all(truth[labels == 1] == 0)
    assert covered == pytest.approx(np.count_nonzero(labels) / labels.size)
    assert 0.04 <= covered <= 0.08


def test_equal_strokes_and_scattered_pixels_split_the_labels_between_classes():
    _, truth = _scene((96, 192))
    labels, covered = bc.sparse_labels(truth, fraction=0.05, seed=1, allocation="equal")
    counts = [np.count_nonzero(labels == k) for k in (1, 2)]
    share = 0.05 * truth.size / 2
    assert all(share <= c <= share + 9 for c in counts), counts
    assert np.all(truth[labels == 2] == 1) and np.all(truth[labels == 1] == 0)
    assert covered == pytest.approx(np.count_nonzero(labels) / labels.size)
    scattered, covered = bc.scattered_labels(truth, fraction=0.05, seed=1)
    assert [np.count_nonzero(scattered == k) for k in (1, 2)] == [round(share)] * 2
    assert np.all(truth[scattered == 2] == 1) and np.all(truth[scattered == 1] == 0)
    assert covered == pytest.approx(2 * round(share) / truth.size)
    # spread out, not strokes: most background labels have no labelled neighbour
    from scipy import ndimage

    def alone(marks):
        neighbours = ndimage.convolve(marks.astype(int), np.ones((3, 3), int), mode="constant")
        return np.mean(neighbours[marks] == 1)

    assert alone(scattered == 1) > 0.6 and alone(labels == 1) < 0.05
    again, _ = bc.scattered_labels(truth, fraction=0.05, seed=1)
    np.testing.assert_array_equal(scattered, again)
    # a class smaller than its share gives all its pixels
    tiny = np.zeros((40, 40), np.uint8)
    tiny[:3, :3] = 1
    few, _ = bc.scattered_labels(tiny, fraction=0.1, seed=0)
    assert np.count_nonzero(few == 2) == 9 and np.count_nonzero(few == 1) == 80


def test_fill_holes_run_scores_the_filled_foreground():
    image, truth = _scene()
    # a dark hole in the middle of one disc: the pixel classifier calls it background
    image = image.copy()
    image[34:39, 78:83] = 60  # in a disc of the right half, never trained on
    run = bc.niseg_run(image, masks=truth[:, :48], split=48, features="fast", fill_holes=True)
    assert run["fill_s"] >= 0.0
    assert not run["foreground"][36, 80] and run["filled"][36, 80]
    assert np.all(run["filled"] >= run["foreground"])  # filling only adds
    chosen = bc.median_of(lambda: dict(run), 1, truth, split=48)
    assert chosen["dice_filled"] > chosen["dice"]
    rows = bc.filled_rows("3c", chosen, {"dice": 0.5, "total_s": 100.0})
    assert rows[0][2] == f"{chosen['dice_filled']:.4f}"
    assert f"{(run['total_s'] + run['fill_s']) / 100.0:.2f}x" in rows[1][4]


def test_reference_and_niseg_runs_segment_the_discs():
    image, truth = _scene()
    ref = bc.reference_run(image, truth, split=48)
    assert ref["foreground"].shape == truth.shape and ref["n_features"] > 0
    assert ref["total_s"] == pytest.approx(ref["features_s"] + ref["fit_s"] + ref["predict_s"])
    assert bc.dice_right(ref["foreground"], truth, split=48) > 0.8
    ours = bc.niseg_run(image, masks=truth[:, :48], split=48, features="fast")
    assert ours["n_features"] == 10 and ours["halo"] == [40, 40]
    assert bc.dice_right(ours["foreground"], truth, split=48) > 0.8


def test_median_of_keeps_the_median_run():
    _image, truth = _scene()
    totals = iter([3.0, 1.0, 2.0])

    def run():
        return {"total_s": next(totals), "foreground": truth.astype(bool)}

    result = bc.median_of(run, 3, truth, split=48)
    assert result["total_s"] == 2.0 and result["totals_s"] == [3.0, 1.0, 2.0]
    # the right half of the truth has foreground, so a perfect prediction scores 1
    assert result["dices"] == [1.0, 1.0, 1.0]


def test_mirror_tile_has_no_seams_and_exact_shape():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = bm.mirror_tile(image, (5, 7))
    assert big.shape == (5, 7) and big.dtype == np.uint8
    np.testing.assert_array_equal(big[:2, :3], image)
    np.testing.assert_array_equal(big[:2, 3:6], image[:, ::-1])
    np.testing.assert_array_equal(big[2:4, :3], image[::-1])
    np.testing.assert_array_equal(big[4], image[0, [0, 1, 2, 2, 1, 0, 0]])


def test_worker_measures_tiled_prediction(tmp_path):
    image, truth = _scene((64, 128))
    bm.SPLIT, split = 64, bm.SPLIT
    try:
        bm.train_model(image, truth, "fast", tmp_path / "model.niseg")
    finally:
        bm.SPLIT = split
    bm.write_input(tmp_path / "input.npy", image, 160)
    stored = np.load(tmp_path / "input.npy")
    np.testing.assert_array_equal(stored, bm.mirror_tile(image, (160, 160)))
    result = bm.worker("tiled", tmp_path / "input.npy", tmp_path / "model.niseg",
                       tmp_path / "labels.npy", tile=64)
    assert result["size"] == 160 and result["tile"] == 64
    assert result["input_mib"] == pytest.approx(160 * 160 / 2**20)
    assert result["working_mib"] == pytest.approx(
        result["peak_mib"] - result["baseline_mib"] - 2 * 160 * 160 / 2**20)
    assert result["anon_peak_mib"] >= result["anon_baseline_mib"]
    labels = np.load(tmp_path / "labels.npy")
    assert labels.shape == (160, 160) and set(np.unique(labels)) == {0, 1}


def test_choose_window_cross_validates_on_the_training_half_only(monkeypatch):
    image, truth = _scene((48, 96))
    left_image, left_truth = image[:, :48], truth[:, :48]
    fitted = []
    fit = bc.PixelClassifier.fit

    def recording_fit(self, images, labels=None, *, masks=None):
        fitted.append((images.shape, bool(np.array_equal(images, left_image[:24]))))
        return fit(self, images, labels, masks=masks)

    monkeypatch.setattr(bc.PixelClassifier, "fit", recording_fit)
    window, scores = bc.choose_window(left_image, left_truth, (None, 3), base="fast")
    # two folds per window, each fitted on one half of the rows: top, then bottom
    assert fitted == [((24, 48), True), ((24, 48), False)] * 2
    assert list(scores) == [None, 3]
    assert all(0.0 <= d <= 1.0 for d in scores.values())
    assert window == max(scores, key=lambda w: scores[w])
    assert min(scores.values()) > 0.5  # the discs are easy: both banks find them
    spec = bc.window_features(3, "fast")
    assert spec.local_stats == bc.LOCAL_STATS and spec.window == 3
    assert spec.scales == bc.FeatureSpec.preset("fast").scales
    assert bc.window_features(None, "fast") == "fast"


def test_median_seed_picks_the_middle_dice():
    runs = [{"seed": 0, "dice": 0.7}, {"seed": 1, "dice": 0.3}, {"seed": 2, "dice": 0.5}]
    assert bc.median_seed(runs)["seed"] == 2
    assert bc.median_seed(runs[:2])["seed"] == 1  # even count: the lower middle


def test_seeds_gap_row_names_the_median_seed_and_every_dice():
    runs = [{"seed": 0, "dice": 0.70, "covered": 0.0101, "loads": [1.0]},
            {"seed": 1, "dice": 0.60, "covered": 0.0102, "loads": [1.5]},
            {"seed": 2, "dice": 0.65, "covered": 0.0103, "loads": [2.0]}]
    row = bc.seeds_gap_row("4d strokes on {covered:.2f} %", runs, "dense", 0.72)
    assert row[0] == "4d strokes on 1.03 % (seed 2: median of 0.700, 0.600, 0.650)"
    assert row[2] == "0.650" and row[3] == "dense 0.720"
    assert "+0.070" in row[4] and row[5] == "FAIL"
    labels, _ = bc.equal_strokes(np.pad(np.ones((20, 20), np.uint8), 20), seed=0)
    assert abs(np.count_nonzero(labels == 1) - np.count_nonzero(labels == 2)) <= 9


def test_guided_strokes_add_the_second_half_where_the_model_hesitates():
    image, truth = _scene((96, 192))
    # noisy enough that the model hesitates somewhere (on the clean scene it is sure of
    # nearly every pixel, and the 0.9 quantile of its uncertainty is 0)
    noise = np.random.default_rng(5).normal(0, 60, image.shape)
    image = (image + noise).clip(0, 255).astype(np.uint8)
    labels, uncertainty = bc.first_round(image, truth, seed=3, fraction=0.04, features="fast")
    assert uncertainty.shape == truth.shape and uncertainty.dtype == np.float32
    assert np.all(truth[labels == 2] == 1) and np.all(truth[labels == 1] == 0)
    share = 0.02 * truth.size / 2
    assert all(share <= np.count_nonzero(labels == k) <= share + 9 for k in (1, 2))
    both, covered = bc.second_round(labels, uncertainty, truth, 0.9, seed=3, fraction=0.04)
    assert covered == pytest.approx(np.count_nonzero(both) / both.size)
    assert np.all(both[labels > 0] == labels[labels > 0])  # the first strokes stay
    assert np.all(truth[both == 2] == 1) and np.all(truth[both == 1] == 0)
    added = (both > 0) & (labels == 0)
    # the budget, less where the uncertain part of a class is too thin for the strokes
    assert 0.01 * truth.size <= np.count_nonzero(added) <= 0.02 * truth.size + 18
    # every added label lies where the first model was among the 10 % least sure
    free = uncertainty[labels == 0]
    assert np.all(uncertainty[added] >= np.quantile(free, 0.9))
    assert np.quantile(free, 0.9) > 0 and uncertainty[added].mean() > 5 * free.mean()
    again, _ = bc.second_round(labels, uncertainty, truth, 0.9, seed=3, fraction=0.04)
    np.testing.assert_array_equal(both, again)


def test_choose_quantile_cross_validates_on_the_training_half_only(monkeypatch):
    image, truth = _scene((48, 96))
    left_image, left_truth = image[:, :48], truth[:, :48]
    fitted = []
    fit = bc.PixelClassifier.fit

    def recording_fit(self, images, labels=None, *, masks=None):
        assert masks is None and labels is not None  # strokes only, never the dense mask
        fitted.append((images.shape, bool(np.array_equal(images, left_image[:24]))))
        return fit(self, images, labels, masks=masks)

    monkeypatch.setattr(bc.PixelClassifier, "fit", recording_fit)
    quantile, scores = bc.choose_quantile(left_image, left_truth, (0.5, 0.9), (0,),
                                          fraction=0.1, features="fast")
    # per fold: the first round's model, then one per quantile; top half first
    assert fitted == [((24, 48), True)] * 3 + [((24, 48), False)] * 3
    assert list(scores) == [0.5, 0.9] and quantile == max(scores, key=lambda q: scores[q])
    assert min(scores.values()) > 0.5  # the discs are easy


def test_guided_draw_computes_each_seed_once(monkeypatch):
    image, truth = _scene((48, 96))
    calls = []
    first_round = bc.first_round

    def counting(*args, **kwargs):
        calls.append(kwargs.get("seed", args[2] if len(args) > 2 else 0))
        return first_round(*args, **kwargs, features="fast")

    monkeypatch.setattr(bc, "first_round", counting)
    draw = bc.guided_strokes(image, 0.8)
    one, covered = draw(truth, seed=1)
    one[:] = 0  # a caller changing its copy does not change the next draw
    two, again = draw(truth, seed=1)
    assert calls == [1] and again == covered and np.count_nonzero(two) > 0
    draw(truth, seed=2)
    assert calls == [1, 2]


@pytest.mark.slow
def test_guided_strokes_on_em_come_within_005_of_dense(shared_data):
    """Row 4g on the real EM image: strokes over about 1 % of the left half, half of them
    where the first model is unsure (the 0.98 quantile the left-half CV chose), train a
    single stage within 0.05 of the dense mask's Dice (median of the three seeds)."""
    image, truth = bc.load_em(shared_data / "em_mitochondria")
    left = truth[:, :bc.SPLIT]
    dense = bc.dice_right(bc.niseg_run(image, masks=left)["foreground"], truth)
    draw = bc.guided_strokes(image[:, :bc.SPLIT], 0.98)
    dices, covered = [], []
    for seed in bc.SPARSE_SEEDS:
        labels, fraction = draw(left, seed=seed)
        covered.append(fraction)
        run = bc.niseg_run(image, labels=labels, foreground=2)
        dices.append(bc.dice_right(run["foreground"], truth))
    assert dense >= 0.78, dense
    assert all(0.007 <= c <= 0.0102 for c in covered), covered
    assert dense - float(np.median(dices)) <= bc.SPARSE_GAP, (dense, dices)
