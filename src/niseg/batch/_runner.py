"""Run one function over many inputs on Dask, resumably, recording finished work.

:func:`run_tasks` is the engine under ``niseg run``: each :class:`BatchTask` (one input file)
goes to a Dask worker, which calls the work function; the work function writes its outputs
atomically under the batch folder and returns a :class:`TaskResult`. The driving process
appends each result to the :class:`~niseg.batch._manifest.Manifest` once it arrives, so the
manifest has one writer and lists only outputs that are completely written.

Workers: a local cluster of ``workers`` processes with one thread each, bound to 127.0.0.1
with no dashboard, or an existing cluster (``scheduler`` address or ``scheduler_file``). In
each task BLAS/OpenMP pools (threadpoolctl) and PyTorch are limited to one thread, so that
``N`` workers use ``N`` cores instead of fighting over them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ._manifest import Manifest, describe_outputs

#: Most characters of an error message kept per failed input.
_MAX_ERROR = 500
#: Whether the user set glibc's trim threshold before niseg was imported (see open_client).
_USER_TRIM_THRESHOLD = "MALLOC_TRIM_THRESHOLD_" in os.environ
#: Threads a task may use, set while a batch task runs in this process (None otherwise).
_TASK_THREADS: int | None = None


def task_threads() -> int | None:
    """Threads the running batch task may use (1), or ``None`` outside a batch task.

    Steps that run a model with its own thread pool (a pixel classifier's ``n_jobs``, a
    U-Net's ``n_threads``) set it to this, so that ``N`` workers use ``N`` cores."""
    return _TASK_THREADS


@dataclasses.dataclass(frozen=True)
class BatchTask:
    """One unit of batch work.

    Parameters
    ----------
    key : str
        Unique name of the task in its batch, also the stem of its outputs relative to the
        batch folder (e.g. ``"day1/sample_003"``).
    input : str
        The input path (or ``file.h5::/dataset`` selector).
    """

    key: str
    input: str


@dataclasses.dataclass
class TaskResult:
    """What a work function returns for a finished task.

    Parameters
    ----------
    outputs : list of str
        Files (or Zarr folders) it wrote, relative to the batch folder.
    row : dict
        Per-input measurements for the batch table (JSON-compatible values).
    """

    outputs: list[str]
    row: dict[str, Any]


@dataclasses.dataclass
class BatchReport:
    """What :func:`run_tasks` did.

    Attributes
    ----------
    done : list of str
        Keys computed in this run.
    skipped : list of str
        Keys already finished by an earlier run (``resume=True``).
    failed : list of (str, str, str)
        ``(key, input, error message)`` of every input that failed.
    cancelled : list of str
        Keys not run because ``fail_fast`` stopped the batch.
    rows : dict
        Key -> measurements row, for done and skipped tasks.
    wall_seconds : float
        Time from submitting the first task to the last result (cluster start excluded).
    compute_seconds : float
        Sum over the done tasks of the time their work function ran.
    workers : int
        Worker threads of the cluster.
    """

    done: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    cancelled: list[str] = dataclasses.field(default_factory=list)
    rows: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    wall_seconds: float = 0.0
    compute_seconds: float = 0.0
    workers: int = 0

    @property
    def overhead(self) -> float:
        """``(wall - compute / workers) / wall``: the share of the wall time the workers were
        not computing (scheduling, transfers, idle tails); 0 when nothing ran."""
        if self.wall_seconds <= 0 or not self.done or self.workers < 1:
            return 0.0
        busy = self.compute_seconds / self.workers
        return max(0.0, (self.wall_seconds - busy) / self.wall_seconds)


def limit_threads() -> Any:
    """Context manager: BLAS/OpenMP pools (threadpoolctl) and PyTorch at one thread, as every
    batch task runs."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    return threadpool_limits(limits=1)


def _execute(work: Callable[..., TaskResult], task: BatchTask, shared: Any,
             out_dir: str) -> tuple[str, Any, float]:
    """Run on a worker: ``("ok", (TaskResult, output records), seconds)`` or ``("error",
    message, seconds)``. The outputs' sizes and checksums for the manifest are taken here,
    where the files were just written, so the driving process does not read them again."""
    global _TASK_THREADS
    start = time.perf_counter()
    _TASK_THREADS = 1
    try:
        with limit_threads():
            result = work(task, shared)
        if not isinstance(result, TaskResult):
            raise TypeError(f"the work function returned {type(result).__name__}, not a "
                            "TaskResult")
        records = describe_outputs(Path(out_dir), result.outputs)
        return "ok", (result, records), time.perf_counter() - start
    except (ValueError, TypeError, OSError, KeyError) as error:
        return "error", _one_line(error), time.perf_counter() - start
    except Exception as error:  # noqa: BLE001 - a batch reports any failure and goes on
        where = traceback.extract_tb(error.__traceback__)[-1:]
        at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
        return "error", f"{type(error).__name__}: {_one_line(error)}{at}", \
            time.perf_counter() - start
    finally:
        _TASK_THREADS = None
        # What the task freed goes back to the system once per task (see open_client).
        from niseg.tiling import _release_freed_memory

        _release_freed_memory()


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:_MAX_ERROR]


def open_client(*, workers: int = 1, scheduler: str | None = None,
                scheduler_file: str | os.PathLike | None = None) -> tuple[Any, Any]:
    """A Dask ``Client`` and the ``LocalCluster`` it owns (``None`` for an existing cluster).

    Parameters
    ----------
    workers : int
        Worker processes of a local cluster (one thread each).
    scheduler : str, optional
        Address of an existing scheduler, e.g. ``"tcp://127.0.0.1:8786"``.
    scheduler_file : str or PathLike, optional
        A scheduler file written by ``dask scheduler --scheduler-file``.

    Returns
    -------
    (Client, LocalCluster or None)
    """
    from distributed import Client, LocalCluster

    if scheduler is not None and scheduler_file is not None:
        raise ValueError("give a scheduler address or a scheduler file, not both")
    if scheduler is not None or scheduler_file is not None:
        if scheduler_file is not None and not Path(scheduler_file).is_file():
            raise ValueError(f"scheduler file '{scheduler_file}' does not exist")
        try:
            client = (Client(scheduler, timeout="10s", set_as_default=False)
                      if scheduler is not None else
                      Client(scheduler_file=str(scheduler_file), timeout="10s",
                             set_as_default=False))
        except (OSError, TimeoutError) as error:
            target = scheduler if scheduler is not None else scheduler_file
            raise ValueError(f"cannot reach the Dask scheduler {target}: "
                             f"{_one_line(error)}") from None
        return client, None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive whole number, got {workers!r}")
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also turns off
    # glibc's adaptive mmap threshold: every array over 128 KiB is then mapped and unmapped,
    # its pages faulted in afresh by every allocation. A recipe task on a 1024^2 image took
    # 2.6 s instead of 1.25-1.9 s, and 3.3 s when two ran at once. Workers keep glibc's
    # defaults (unless the user set the variable) and _execute trims once per task instead.
    import dask

    if not _USER_TRIM_THRESHOLD:
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)  # left by an earlier Dask nanny
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               worker_dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster, set_as_default=False), cluster


@contextlib.contextmanager
def client_scope(client: Any = None, *, workers: int = 1, scheduler: str | None = None,
                 scheduler_file: str | os.PathLike | None = None) -> Iterator[Any]:
    """Yield ``client``, or a client of :func:`open_client` that is closed (with its local
    cluster) when the block ends."""
    if client is not None:
        yield client
        return
    client, cluster = open_client(workers=workers, scheduler=scheduler,
                                  scheduler_file=scheduler_file)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_tasks(
    tasks: Sequence[BatchTask],
    work: Callable[[BatchTask, Any], TaskResult],
    out_dir: str | os.PathLike,
    *,
    shared: Any = None,
    workers: int = 1,
    scheduler: str | None = None,
    scheduler_file: str | os.PathLike | None = None,
    resume: bool = False,
    fail_fast: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    client: Any = None,
) -> BatchReport:
    """Run ``work(task, shared)`` for every task on Dask; record finished tasks.

    Parameters
    ----------
    tasks : sequence of BatchTask
        The inputs, with unique keys.
    work : callable
        ``work(task, shared) -> TaskResult``, importable by the workers (a module-level
        function). It writes its outputs under ``out_dir`` atomically and raises
        ``ValueError`` (or any exception) for an input it cannot process.
    out_dir : str or PathLike
        The batch folder (must exist); it holds ``manifest.jsonl``.
    shared : object, optional
        Read-only data every task needs (a loaded recipe, fitted levels): sent to each
        worker once.
    workers, scheduler, scheduler_file
        Cluster, see :func:`open_client`.
    resume : bool
        Skip tasks the manifest lists as finished with intact outputs; remove temporary
        files a killed run left. Without it, a folder that already has a manifest is refused.
    fail_fast : bool
        Stop at the first failed input (the others are cancelled) instead of going on.
    progress : callable, optional
        ``progress(done, total, text)`` after each finished or failed task.
    client : distributed.Client, optional
        Use this client instead of opening one (the caller closes it).

    Returns
    -------
    BatchReport

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from niseg.batch._runner import BatchTask, run_tasks, demo_work
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> tasks = [BatchTask(key=f"t{i}", input=str(i)) for i in range(3)]
    >>> report = run_tasks(tasks, demo_work, out, shared=10)  # doctest: +SKIP
    >>> sorted(report.done), report.failed  # doctest: +SKIP
    (['t0', 't1', 't2'], [])
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise ValueError(f"batch folder '{out}' does not exist")
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"two inputs give the same output name '{duplicate}'")
    manifest = Manifest(out)
    if manifest.entries and not resume:
        raise ValueError(f"'{out}' holds an earlier batch ({len(manifest.entries)} finished "
                         "inputs in manifest.jsonl); pass --resume to continue it or choose "
                         "another output folder")
    report = BatchReport()
    if resume:
        manifest.remove_partial_files()
    todo = []
    for task in tasks:
        if resume and manifest.is_finished(task.key):
            report.skipped.append(task.key)
            report.rows[task.key] = manifest.entries[task.key].get("row", {})
        else:
            todo.append(task)
    total = len(tasks)
    if progress is not None:
        progress(len(report.skipped), total, f"{len(report.skipped)} already done")
    if not todo:
        return report

    with client_scope(client, workers=workers, scheduler=scheduler,
                      scheduler_file=scheduler_file) as active:
        report.workers = sum(w.get("nthreads", 1) for w in
                             active.scheduler_info(n_workers=-1)["workers"].values()) or 1
        _run_on(active, todo, work, shared, out, manifest, report, fail_fast, progress, total)
    return report


def _run_on(client: Any, todo: list[BatchTask], work: Callable[..., TaskResult], shared: Any,
            out: Path, manifest: Manifest, report: BatchReport, fail_fast: bool,
            progress: Callable[[int, int, str], None] | None, total: int) -> None:
    from distributed import as_completed

    # In a list, so that a dict is sent as one object rather than one future per key.
    # hash=False: a content-hashed key is shared with an earlier run's scatter of the same
    # data, and Dask cancels the new tasks ("lost dependencies") when the scheduler forgets
    # that key after the new scatter (dask/distributed#8576, #3703).
    shared_future = (client.scatter([shared], broadcast=True, hash=False)[0]
                     if shared is not None else None)
    start = time.perf_counter()
    futures = {}
    for task in todo:
        future = client.submit(_execute, work, task, shared_future, str(out), pure=False,
                               key=f"niseg-task-{task.key}-{os.urandom(4).hex()}")
        futures[future] = task
    finished = len(report.skipped)
    try:
        for future in as_completed(futures, loop=client.loop):
            task = futures[future]
            status, value, seconds = future.result()
            finished += 1
            if status == "ok":
                result, records = value
                manifest.record(task.key, input=task.input, outputs=records,
                                row=result.row, seconds=seconds)
                report.done.append(task.key)
                report.rows[task.key] = result.row
                report.compute_seconds += seconds
                text = f"{task.key} done"
            else:
                report.failed.append((task.key, task.input, value))
                text = f"{task.key} failed: {value}"
            if progress is not None:
                progress(finished, total, text)
            if status != "ok" and fail_fast:
                for other, other_task in futures.items():
                    if not other.done():
                        other.cancel()
                        report.cancelled.append(other_task.key)
                break
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        report.wall_seconds = time.perf_counter() - start


def demo_work(task: BatchTask, shared: Any) -> TaskResult:
    """A tiny work function for examples and tests: writes ``key.txt`` holding input * shared.

    Parameters
    ----------
    task : BatchTask
        ``task.input`` is a number as text; ``"fail"`` raises ``ValueError``.
    shared : int
        The factor.

    Returns
    -------
    TaskResult
    """
    from niseg.io import atomic_output

    if task.input == "fail":
        raise ValueError(f"input '{task.input}' cannot be read")
    out = Path(shared["out_dir"]) if isinstance(shared, dict) else None
    factor = shared["factor"] if isinstance(shared, dict) else shared
    value = float(task.input) * float(factor)
    row = {"value": value, "threads": task_threads()}
    if out is None:
        return TaskResult(outputs=[], row=row)
    path = out / f"{task.key}.txt"
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(f"{value}\n", encoding="utf-8")
    if isinstance(shared, dict) and shared.get("sleep"):
        time.sleep(float(shared["sleep"]))
    return TaskResult(outputs=[path.name], row=row)
