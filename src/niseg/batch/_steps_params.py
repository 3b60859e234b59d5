"""Parameter specifications of recipe steps: types, defaults, ranges, path checks.

One :class:`Param` both validates a recipe's value (turning it into its canonical form:
floats for numbers, absolute paths) and describes itself for :func:`list_steps` and the
documentation.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path
from typing import Any

__all__ = ["Param", "ParamError", "closest"]

_NO_DEFAULT = object()


class ParamError(ValueError):
    """A parameter value that does not fit its specification (message without location)."""


def closest(name: str, known: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'x'?)' when a known name is near ``name``, else ''."""
    match = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


@dataclasses.dataclass(frozen=True)
class Param:
    """Specification of one step parameter.

    ``kind`` is one of ``bool``, ``int``, ``float``, ``str``, ``choice`` (one of
    ``choices``), ``int_or_auto``, ``numbers`` (a list of numbers, ``length`` long when
    given), ``ints`` (whole numbers), ``strings`` (a list of ``choices``), ``path`` (an existing file) or ``paths`` (a
    file, folder or glob, or a list of them, each matching at least one image file).
    """

    name: str
    kind: str
    doc: str
    default: Any = _NO_DEFAULT
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    optional: bool = False
    length: int | None = None

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT

    def describe_type(self) -> str:
        if self.kind in ("choice", "strings"):
            text = " | ".join(self.choices or ())
            text = f"list of {text}" if self.kind == "strings" else text
        elif self.kind == "ints":
            text = "list of int"
        elif self.kind == "numbers":
            text = f"list of {self.length} numbers" if self.length else "list of numbers"
        elif self.kind == "int_or_auto":
            text = "int | auto"
        elif self.kind == "paths":
            text = "path, folder or glob (or a list)"
        else:
            text = self.kind
        if self.low is not None or self.high is not None:
            lo = "" if self.low is None else f"{self.low:g} <= "
            hi = "" if self.high is None else f" <= {self.high:g}"
            text += f", {lo}value{hi}"
        return text + (" or null" if self.optional else "")

    def check(self, value: Any, base_dir: Path | None) -> Any:
        """Return ``value`` in canonical form (paths absolute) or raise :class:`ParamError`."""
        if value is None:
            if self.optional:
                return None
            raise ParamError(f"must be {self.describe_type()}, not null")
        kind = self.kind
        if kind == "bool":
            if not isinstance(value, bool):
                raise ParamError(f"must be true or false, got {value!r}")
            return value
        if kind == "int_or_auto" and value == "auto":
            return "auto"
        if kind in ("int", "int_or_auto"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParamError(f"must be a whole number, got {value!r}")
            return self._in_range(value)
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamError(f"must be a number, got {value!r}")
            return self._in_range(float(value))
        if kind == "str":
            if not isinstance(value, str):
                raise ParamError(f"must be text, got {value!r}")
            return value
        if kind == "choice":
            if value not in (self.choices or ()):
                raise ParamError(f"must be one of {', '.join(self.choices or ())}, got "
                                 f"{value!r}{closest(str(value), self.choices or ())}")
            return value
        if kind == "strings":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not items:
                raise ParamError(f"must be a name or a list of names, got {value!r}")
            for item in items:
                if item not in (self.choices or ()):
                    raise ParamError(f"holds {item!r}, which is not one of "
                                     f"{', '.join(self.choices or ())}")
            return list(items)
        if kind == "numbers":
            items = [value] if isinstance(value, (int, float)) and not isinstance(
                value, bool) else value
            if not isinstance(items, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
                raise ParamError(f"must be a list of numbers, got {value!r}")
            if self.length is not None and len(items) != self.length:
                raise ParamError(f"must hold {self.length} numbers, got {len(items)}")
            if not items:
                raise ParamError("must hold at least one number")
            return [float(v) for v in items]
        if kind == "ints":
            items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(items, list) or not items or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in items):
                raise ParamError(f"must be a whole number or a list of them, got {value!r}")
            for item in items:
                self._in_range(item)
            return list(items)
        if kind == "path":
            return str(_existing_file(value, base_dir))
        if kind == "paths":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not items or not all(
                    isinstance(v, str) for v in items):
                raise ParamError(f"must be a path, folder or glob or a list of them, got "
                                 f"{value!r}")
            return [_existing_images(v, base_dir) for v in items]
        raise AssertionError(f"unknown parameter kind {kind!r}")

    def _in_range(self, value: float) -> Any:
        if (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high):
            raise ParamError(f"must be {self.describe_type()}, got {value!r}")
        return value


def _resolve(text: str, base_dir: Path | None) -> Path:
    path = Path(os.path.expanduser(text))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return Path(os.path.abspath(path))


def _existing_file(value: Any, base_dir: Path | None) -> Path:
    if not isinstance(value, str) or not value:
        raise ParamError(f"must be a file path, got {value!r}")
    path = _resolve(value, base_dir)
    if not path.is_file():
        raise ParamError(f"names '{path}', which does not exist")
    return path


def _existing_images(value: str, base_dir: Path | None) -> str:
    from niseg.io import expand_paths

    spec = str(_resolve(value, base_dir))
    try:
        expand_paths(spec)
    except ValueError:
        raise ParamError(f"names '{spec}', which matches no image file") from None
    return spec
