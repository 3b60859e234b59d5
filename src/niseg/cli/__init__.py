"""The ``niseg`` command line: one sub-command per task, a thin layer over the library.

User errors (a missing or unreadable file, a wrong shape, an existing output) print
``error: <one sentence>`` on stderr and exit with status 2, without a traceback unless
``--debug`` is given. Exit status 0 means done.

Each command lives in a private module of this package; importing the package registers them
all on :data:`app`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

# Importing a command module registers its command on ``app``; one line per module.
from . import (
    _cluster,  # noqa: F401
    _cluster_spectra,  # noqa: F401
    _convert,  # noqa: F401
    _demo,  # noqa: F401
    _evaluate,  # noqa: F401
    _info,  # noqa: F401
    _normalize,  # noqa: F401
    _objects,  # noqa: F401
    _predict,  # noqa: F401
    _regions,  # noqa: F401
    _report,  # noqa: F401
    _robustness,  # noqa: F401
    _run,  # noqa: F401
    _simulate,  # noqa: F401
    _spots,  # noqa: F401
    _threshold,  # noqa: F401
    _train,  # noqa: F401
)
from ._app import _stderr, app

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``niseg`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        0 when done, 2 for a user error (message on stderr, no traceback unless ``--debug``).

    Examples
    --------
    >>> main(["--version"])  # doctest: +ELLIPSIS
    niseg ...
    0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="niseg", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _stderr("error: interrupted")
        return 130
    except (ValueError, TypeError, OSError, ImportError, MemoryError) as exc:
        if debug:
            raise
        _stderr(f"error: {_one_sentence(exc)}")
        return 2
    except Exception as exc:
        # Command-line usage errors (click's, or the copy of click that typer ships).
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")) or debug:
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare 'niseg' or 'niseg simulate'
            typer.echo(exc.format_message())
            return 0
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see '{ctx.command_path} --help')"
        _stderr(f"error: {exc.format_message()}{hint}")
        return 2
    return int(result) if isinstance(result, int) else 0


def _one_sentence(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "not enough memory for this image; process it in tiles or chunks"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: '{exc.filename}'"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"permission denied: '{exc.filename}'"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
