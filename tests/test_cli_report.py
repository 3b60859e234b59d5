"""`niseg report`: the HTML report of a batch run from the command line."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

from cli_helpers import assert_user_error, run
from niseg.batch import Recipe, run_recipe_serial
from niseg.io import write_image


@pytest.fixture()
def run_dir(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for k, name in enumerate(("a", "b")):
        image = np.zeros((32, 32), np.float32)
        image[4:12 + 4 * k, 4:12] = 1
        write_image(inputs / f"{name}.tif", image)
    recipe = Recipe.from_yaml("niseg_recipe: 1\nsteps: [threshold, measure, write]")
    run_recipe_serial(recipe, inputs, tmp_path / "run")
    return tmp_path / "run"


def test_report_writes_the_default_page_and_refuses_to_replace_it(run_dir, tmp_path, capsys):
    status, out, err = run(capsys, "report", run_dir)
    assert status == 0, err
    page = run_dir / "report.html"
    assert out.strip() == f"report: {page}"
    text = page.read_text()
    HTMLParser().feed(text)
    assert text.count("<img ") == 3 and 'class="sortable"' in text
    before = page.read_bytes()
    status, _, err = run(capsys, "report", run_dir, "--quiet")
    assert_user_error(status, err, "report.html", "--overwrite")
    assert page.read_bytes() == before
    truth = tmp_path / "truth"
    truth.mkdir()
    mask = np.zeros((32, 32), np.uint8)
    mask[4:12, 4:12] = 1
    write_image(truth / "a.tif", mask)
    status, out, err = run(capsys, "report", run_dir, "--overwrite", "--quiet", "--truth", truth,
                           "--max-thumbnails", "1")
    assert status == 0 and out == "" and err == ""
    text = page.read_text()
    assert "Confusion matrix" in text and "a (Dice 1.000)" in text
    assert text.count("<figcaption>") == 1


def test_report_of_a_folder_that_is_not_a_run_is_a_user_error(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    status, _, err = run(capsys, "report", tmp_path / "plain", "-o", tmp_path / "r.html")
    assert_user_error(status, err, "not a niseg run folder")
    assert list((tmp_path / "plain").iterdir()) == [] and not (tmp_path / "r.html").exists()
    status, _, err = run(capsys, "report", tmp_path / "missing")
    assert_user_error(status, err, "missing")
