"""The HTML report of a batch run: sections, thumbnails, sortable table, no URLs, escaping."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from niseg.batch import Recipe, run_recipe_serial
from niseg.io import read_image, write_image
from niseg.report import write_batch_report, write_html_report

VOID = {"meta", "img", "br", "link", "input", "hr"}
RECIPE = "niseg_recipe: 1\nname: squares\nsteps: [threshold, measure, write]"


class _Page(HTMLParser):
    """Collects what the tests look at: headings, images, tables, scripts, links."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.headings: list[str] = []
        self.images: list[str] = []
        self.table_classes: list[str | None] = []
        self.scripts = 0
        self.sources: list[str] = []
        self.missing_tiles: list[str] = []
        self.captions: list[str] = []
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "table":
            self.table_classes.append(attrs.get("class"))
        if tag == "script":
            self.scripts += 1
            assert "src" not in attrs
        for name in ("src", "href"):
            if name in attrs:
                self.sources.append(attrs[name])
        if tag in ("h2", "figcaption") or (tag == "div" and attrs.get("class") == "missing"):
            self._text = []
            self._kind = "missing" if tag == "div" else tag

    def handle_endtag(self, tag):
        if self._text is not None and tag in ("h2", "figcaption", "div"):
            text = "".join(self._text)
            {"h2": self.headings, "figcaption": self.captions,
             "missing": self.missing_tiles}[self._kind].append(text)
            self._text = None
        assert self.stack.pop() == tag

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def parse(path) -> tuple[_Page, str]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert page.stack == []  # every element closed
    return page, text


def _square(size: int, start: int, stop: int, *, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(start)
    image = rng.normal(0.0, 0.02, (size, size)).astype(dtype)
    image[start:stop, start:stop] += 1.0
    return image


@pytest.fixture()
def run_dir(tmp_path):
    """A finished run over three inputs, one of them with an HTML-like name."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, (start, stop) in {"a": (4, 20), "b": (8, 40), "<script>x": (10, 30)}.items():
        write_image(inputs / f"{name}.tif", _square(48, start, stop),
                    {"pixel_size": (2.0, 2.0), "unit": "um"})
    run_recipe_serial(Recipe.from_yaml(RECIPE), inputs, tmp_path / "run")
    return tmp_path / "run"


def test_report_has_every_section_and_loads_nothing(run_dir):
    page_path = write_batch_report(run_dir)
    assert page_path == run_dir / "report.html"
    page, text = parse(page_path)
    assert page.headings == ["Run", "Recipe", "Versions", "Inputs and segmentations",
                             "Measurements per file", "Histograms"]
    # three thumbnails and one histogram figure, all embedded PNGs
    assert len(page.images) == 4
    assert all(src.startswith("data:image/png;base64,") for src in page.sources)
    assert "http://" not in text and "https://" not in text
    assert page.table_classes.count("sortable") == 1 and page.scripts == 1
    # the one script is allowed by its hash and nothing else may load
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert "name: squares" in text and "threshold:" in text  # the recipe as text
    assert "scikit-image" in text
    # per-file numbers: the measured foreground fractions appear in the table
    rows = json.loads((run_dir / "measurements.json").read_text())["files"]
    fractions = {r["key"]: r["foreground_fraction"] for r in rows}
    assert fractions["b"] == pytest.approx(32 * 32 / 48**2)
    assert f"{fractions['b']:.4g}" in text


def test_file_names_are_escaped(run_dir):
    page, text = parse(write_batch_report(run_dir))
    assert "<script>x" not in text
    assert "&lt;script&gt;x" in text
    assert page.scripts == 1
    assert "<script>x" in page.captions


def test_missing_input_is_a_grey_tile_and_failures_are_listed(run_dir, tmp_path):
    (tmp_path / "in" / "a.tif").unlink()
    run = json.loads((run_dir / "measurements.json").read_text())
    run["failed"] = [{"key": "c", "input": str(tmp_path / "in" / "c.tif"),
                      "error": "cannot read <c.tif>: truncated"}]
    (run_dir / "measurements.json").write_text(json.dumps(run))
    page, text = parse(write_batch_report(run_dir, tmp_path / "r.html"))
    assert page.missing_tiles == ["input not found"]
    assert len(page.images) == 3  # two thumbnails and the histograms
    assert page.headings[-1] == "Failed inputs"
    assert "cannot read &lt;c.tif&gt;: truncated" in text


def test_truth_and_probabilities_add_scores_confusion_and_roc(run_dir, tmp_path):
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    truth_b = np.zeros((48, 48), np.uint8)
    truth_b[8:40, 8:40] = 1
    write_image(truth_dir / "b.tif", truth_b)
    segmentation_a, _ = read_image(run_dir / "a.tif")
    truth_a = np.zeros((48, 48), np.uint8)
    truth_a[4:20, 4:22] = 1  # two columns of the truth are missed
    proba_a = np.stack([1 - truth_a, truth_a], axis=-1).astype(np.float32)
    page, _ = parse(write_batch_report(run_dir, tmp_path / "r.html", truth=truth_dir))
    assert "Confusion matrix" in page.headings and "ROC curve" not in page.headings
    page, _ = parse(write_batch_report(
        run_dir, tmp_path / "r2.html", truth={"a": truth_a, "b": truth_dir / "b.tif"},
        proba={"a": proba_a}))
    assert page.headings[-2:] == ["Confusion matrix", "ROC curve"]
    assert len(page.images) == 3 + 1 + 2
    expected = 2 * 16 * 16 / (16 * 16 + 16 * 18)
    assert np.count_nonzero(segmentation_a) == 16 * 16
    assert f"a (Dice {expected:.3f})" in page.captions
    assert "b (Dice 1.000)" in page.captions


def test_bad_run_folders_and_inputs_are_refused(run_dir, tmp_path):
    with pytest.raises(ValueError, match="not a niseg run folder"):
        write_batch_report(tmp_path / "in")
    with pytest.raises(ValueError, match="does not exist"):
        write_batch_report(tmp_path / "nowhere")
    write_batch_report(run_dir)
    with pytest.raises(FileExistsError, match="already exists"):
        write_batch_report(run_dir)
    with pytest.raises(ValueError, match="'zzz', which is not an input"):
        write_batch_report(run_dir, overwrite=True, truth={"zzz": np.zeros((48, 48))})
    with pytest.raises(ValueError, match="truth of 'a' has shape"):
        write_batch_report(run_dir, overwrite=True, truth={"a": np.zeros((4, 4))})
    with pytest.raises(ValueError, match="max_thumbnails"):
        write_batch_report(run_dir, overwrite=True, max_thumbnails=-1)


def test_thumbnails_are_limited_and_volumes_show_a_slice(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    volume = np.zeros((5, 24, 24), np.float32)
    volume[:, 4:12, 4:12] = 1
    write_image(inputs / "v.tif", volume)
    write_image(inputs / "w.tif", volume)
    run_recipe_serial(Recipe.from_yaml(RECIPE), inputs, tmp_path / "run")
    page, _ = parse(write_batch_report(tmp_path / "run", max_thumbnails=1))
    assert page.captions == ["v"]
    assert len(page.images) == 1  # the thumbnail; two equal files give no histogram


def test_html_report_gallery_code_and_sortable_table(tmp_path):
    out = write_html_report(tmp_path / "p.html", title="t", sections=[
        {"heading": "g", "gallery": [{"caption": "<a>", "image": None, "note": "gone"}],
         "code": "x: <1>", "table": [{"n": 2}, {"n": 10}], "sortable": True}])
    page, text = parse(out)
    assert page.missing_tiles == ["gone"] and page.captions == ["<a>"]
    assert "<pre>x: &lt;1&gt;</pre>" in text and page.scripts == 1
    with pytest.raises(TypeError, match="sortable"):
        write_html_report(tmp_path / "q.html", title="t",
            sections=[{"heading": "h", "table": {"a": 1}, "sortable": True}])
    with pytest.raises(ValueError, match="unknown key"):
        write_html_report(tmp_path / "q.html", title="t",
            sections=[{"heading": "h", "gallery": [{"caption": "c", "colour": 1}]}])
    without = write_html_report(tmp_path / "r.html", title="t", sections=[{"heading": "h", "table": [{}]}])
    assert "<script>" not in without.read_text() and "script-src" not in without.read_text()
