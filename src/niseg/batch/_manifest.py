"""The run manifest: which outputs of a batch are completely written.

A batch folder holds ``manifest.jsonl``, one JSON line per finished task, appended (and
flushed to disk) by the process that drives the run only after every output of the task has
been renamed into place. A task is finished on ``--resume`` when its line is present and
every output it lists still exists with the recorded size and SHA-256; anything else is done
again. A run killed while appending leaves at most one unreadable last line, which is
dropped when the manifest is read back (the file is then rewritten without it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.jsonl"
#: Temporary names of :func:`niseg.io.atomic_output` (``.{stem}.{hex}.partial{suffix}``).
PARTIAL_GLOB = ".*.partial*"


def file_digest(path: Path) -> tuple[int, str]:
    """Size in bytes and SHA-256 of a file, or of every file under a folder (Zarr)."""
    digest = hashlib.sha256()
    size = 0
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            digest.update(file.relative_to(path).as_posix().encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return size, digest.hexdigest()


def describe_outputs(out_dir: Path, outputs: Iterable[str]) -> list[dict[str, Any]]:
    """The manifest's record of outputs (paths relative to ``out_dir``)."""
    records = []
    for rel in outputs:
        size, sha = file_digest(out_dir / rel)
        records.append({"path": rel, "bytes": size, "sha256": sha})
    return records


class Manifest:
    """Finished tasks of one batch folder, keyed by task key.

    Parameters
    ----------
    out_dir : str or PathLike
        The batch's output folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (out / "a.tif").write_bytes(b"pixels")
    >>> m = Manifest(out)
    >>> m.record("a", input="in/a.tif", outputs=["a.tif"], row={"objects": 3}, seconds=0.5)
    >>> sorted(Manifest(out).finished())
    ['a']
    >>> _ = (out / "a.tif").write_bytes(b"changed")
    >>> sorted(Manifest(out).finished())  # an output that changed is not finished
    []
    """

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST_NAME
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        good = []
        for k, line in enumerate(lines):
            try:
                entry = json.loads(line)
                key = entry["key"]
            except (json.JSONDecodeError, KeyError, TypeError):
                if k == len(lines) - 1:
                    break  # the append a kill interrupted
                raise ValueError(f"{self.path} line {k + 1} is not a manifest entry; the "
                                 "folder holds something other than a niseg batch") from None
            self.entries[key] = entry
            good.append(line)
        if len(good) != len(lines):
            text = "".join(f"{line}\n" for line in good)
            tmp = self.path.with_name(f".{MANIFEST_NAME}.rewrite")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)

    def is_finished(self, key: str) -> bool:
        """Whether ``key`` is recorded and all its outputs are intact."""
        entry = self.entries.get(key)
        if entry is None:
            return False
        for record in entry.get("outputs", []):
            path = self.out_dir / record["path"]
            if not path.exists():
                return False
            size, sha = file_digest(path)
            if size != record["bytes"] or sha != record["sha256"]:
                return False
        return True

    def finished(self) -> list[str]:
        """Keys of every finished task."""
        return [key for key in self.entries if self.is_finished(key)]

    def record(self, key: str, *, input: str, outputs: Iterable[str | Mapping[str, Any]],
               row: Mapping[str, Any], seconds: float) -> None:
        """Append a finished task (after its outputs are in place) and flush it to disk.

        ``outputs`` are paths relative to the batch folder, or the records of
        :func:`describe_outputs` already made where the files were written (a worker), so
        that the process keeping the manifest does not read every output again.
        """
        items = list(outputs)
        paths = [o for o in items if not isinstance(o, Mapping)]
        described = iter(describe_outputs(self.out_dir, paths))
        records = [dict(o) if isinstance(o, Mapping) else next(described) for o in items]
        entry = {"key": key, "input": input, "outputs": records,
                 "row": dict(row), "seconds": round(float(seconds), 6)}
        line = json.dumps(entry, sort_keys=True, default=str)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.entries[key] = entry

    def remove_partial_files(self) -> list[Path]:
        """Delete temporary outputs a killed run left behind; return what was removed."""
        import shutil

        removed = []
        for path in sorted(self.out_dir.rglob(PARTIAL_GLOB)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        return removed
