"""niseg works without PyTorch: everything but niseg.deep imports and runs with torch hidden."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

HIDE_TORCH = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch.") or name.startswith("safetensors.torch"):
                raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
            return None

    sys.meta_path.insert(0, _NoTorch())
    for mod in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        del sys.modules[mod]
    """
)


def _run(code: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", HIDE_TORCH + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )


def test_torch_is_really_hidden(tmp_path):
    result = _run("import torch", tmp_path)
    assert result.returncode != 0
    assert "hidden by the test" in result.stderr


def test_every_module_but_deep_imports_without_torch(tmp_path):
    code = """
    import pkgutil, importlib, niseg
    names = [m.name for m in pkgutil.walk_packages(niseg.__path__, "niseg.")]
    assert len(names) > 10, names
    for name in names:
        if name == "niseg.deep" or name.startswith("niseg.deep.") or name.endswith(".__main__"):
            continue
        importlib.import_module(name)
    assert "torch" not in sys.modules
    print("imported", len(names))
    """
    result = _run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout


@pytest.mark.slow  # the whole demo, 25 s: part of the full suite
def test_demo_runs_without_torch(tmp_path):
    code = """
    from niseg.cli import main
    status = main(["demo", "-o", "out", "--quiet"])
    assert status == 0, status
    assert "torch" not in sys.modules
    import pathlib
    assert (pathlib.Path("out") / "report.html").is_file()
    """
    result = _run(code, tmp_path)
    assert result.returncode == 0, result.stderr
