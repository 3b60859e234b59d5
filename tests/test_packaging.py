"""The README's two commands and CI stay in step, and the package metadata is sound."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_opens_with_demo_then_tests():
    commands = _readme_commands()
    assert len(commands) >= 2
    first, second = commands[0], commands[1]
    assert "niseg demo" in first and "pip install ." in first
    assert "pytest" in second and "torch==2.13.0" in second
    # torch (the CPU build) is installed before the project, so pip never pulls a GPU build.
    assert second.index("torch==2.13.0") < second.index('-e ".[test,deep]"')


def test_ci_runs_exactly_the_readme_test_command():
    second = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert second in ci.splitlines()
    assert "-eq 5" in ci  # "no tests collected" is reported, and its status 5 fails the run


def test_pyproject_declares_script_extras_and_core_dependencies():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    assert project["scripts"]["niseg"] == "niseg.cli:main"
    # zarr>=3 needs Python 3.11, so niseg cannot install on 3.10 whatever it declares
    assert project["requires-python"] == ">=3.11"
    extras = project["optional-dependencies"]
    assert {"deep", "test", "dev"} <= set(extras)
    assert any(dep.startswith("torch") for dep in extras["deep"])
    core = " ".join(project["dependencies"])
    assert "torch" not in core
    for name in ("numpy", "scipy", "scikit-image", "scikit-learn", "tifffile", "imageio",
                 "astropy", "h5py", "zarr>=3", "dask", "distributed", "dask-image", "PyYAML",
                 "threadpoolctl", "matplotlib", "typer", "rich", "skops"):
        assert name in core, name


def test_no_unsafe_deserialisation_in_the_package():
    pattern = re.compile(r"import pickle|pickle\.load|joblib\.load|torch\.load\(")
    for path in (ROOT / "src").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if pattern.search(line):
                assert "weights_only=True" in line, f"{path}: {line}"
