"""Batch engine: Dask local cluster, manifest, resume after SIGKILL, failures, fail-fast."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from niseg.batch._manifest import MANIFEST_NAME, Manifest
from niseg.batch._runner import BatchTask, demo_work, open_client, run_tasks


@pytest.fixture(scope="module")
def client():
    client, cluster = open_client(workers=2)
    yield client
    client.close()
    cluster.close()


def tasks(n, fail=()):
    return [BatchTask(key=f"t{i:02d}", input="fail" if i in fail else str(i)) for i in range(n)]


def test_runs_every_task_and_records_it(tmp_path, client):
    seen = []
    report = run_tasks(tasks(6), demo_work, tmp_path, shared={"factor": 3, "out_dir": str(tmp_path)},
                       client=client, progress=lambda d, t, text: seen.append((d, t)))
    assert sorted(report.done) == [f"t{i:02d}" for i in range(6)] and not report.failed
    assert report.rows["t04"] == {"value": 12.0, "threads": 1}  # one thread per task
    assert (tmp_path / "t05.txt").read_text() == "15.0\n"
    assert seen[-1] == (6, 6) and len(seen) == 7  # the start plus one call per task
    lines = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    assert len(lines) == 6
    entry = json.loads(lines[0])
    assert set(entry) == {"key", "input", "outputs", "row", "seconds"}
    assert entry["outputs"][0]["bytes"] == len((tmp_path / entry["outputs"][0]["path"]).read_bytes())
    assert report.workers == 2 and report.compute_seconds > 0
    assert 0 <= report.overhead <= 1


def test_failures_are_reported_and_the_rest_finish(tmp_path, client):
    report = run_tasks(tasks(5, fail={1, 3}), demo_work, tmp_path,
                       shared={"factor": 1, "out_dir": str(tmp_path)}, client=client)
    assert sorted(report.done) == ["t00", "t02", "t04"]
    assert sorted(k for k, _, _ in report.failed) == ["t01", "t03"]
    assert report.failed[0][2] == "input 'fail' cannot be read"
    assert not (tmp_path / "t01.txt").exists()
    assert sorted(Manifest(tmp_path).finished()) == ["t00", "t02", "t04"]


def test_fail_fast_cancels_the_rest(tmp_path, client):
    work = tasks(12, fail={0})
    report = run_tasks(work, demo_work, tmp_path, client=client, fail_fast=True,
                       shared={"factor": 1, "out_dir": str(tmp_path), "sleep": 0.3})
    assert [k for k, _, _ in report.failed] == ["t00"]
    assert report.cancelled and len(report.done) + len(report.cancelled) == 11


def test_existing_batch_needs_resume_and_resume_skips_intact_outputs(tmp_path, client):
    shared = {"factor": 2, "out_dir": str(tmp_path)}
    run_tasks(tasks(4), demo_work, tmp_path, shared=shared, client=client)
    with pytest.raises(ValueError, match="holds an earlier batch .* pass --resume"):
        run_tasks(tasks(4), demo_work, tmp_path, shared=shared, client=client)
    (tmp_path / "t02.txt").write_text("tampered\n")
    (tmp_path / ".t03.abcd1234.partial.txt").write_text("half")
    report = run_tasks(tasks(5), demo_work, tmp_path, shared=shared, client=client, resume=True)
    assert sorted(report.skipped) == ["t00", "t01", "t03"]
    assert sorted(report.done) == ["t02", "t04"]  # the changed output is made again
    assert (tmp_path / "t02.txt").read_text() == "4.0\n"
    assert not list(tmp_path.glob(".*.partial*"))
    assert report.rows["t00"] == {"value": 0.0, "threads": 1}


def test_back_to_back_runs_with_the_same_shared_data_are_never_cancelled(tmp_path, client):
    # Old code scattered `shared` under a content-hashed key; when the next run scattered
    # the same data while the scheduler was forgetting the first run's copy, Dask cancelled
    # the new tasks ("lost dependencies"): 2 runs in 40 here, a red CI run twice.
    for i in range(40):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        report = run_tasks(tasks(3), demo_work, folder, shared=7, client=client)
        assert sorted(report.done) == ["t00", "t01", "t02"]
        assert report.rows["t02"]["value"] == 14.0


def _trim_threshold():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_workers_keep_glibc_malloc_defaults(client, monkeypatch):
    # Dask's nanny would start them with MALLOC_TRIM_THRESHOLD_=65536, which made a recipe
    # task on a 1024^2 image twice as slow (every large array's pages faulted in afresh).
    assert set(client.run(_trim_threshold).values()) == {None}
    # ... even after an earlier nanny left the variable in this process's environment.
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    other, cluster = open_client(workers=1)
    try:
        assert set(other.run(_trim_threshold).values()) == {None}
    finally:
        other.close()
        cluster.close()


def test_local_cluster_listens_on_localhost_only(client):
    import psutil  # a dependency of distributed

    pids = {os.getpid()} | {c.pid for c in psutil.Process().children(recursive=True)}
    listening = [c.laddr for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert len(listening) >= 3  # scheduler, its HTTP endpoint, the workers
    assert {a.ip for a in listening} == {"127.0.0.1"}


def test_torn_last_manifest_line_is_dropped(tmp_path):
    (tmp_path / "a.txt").write_text("1\n")
    Manifest(tmp_path).record("a", input="1", outputs=["a.txt"], row={}, seconds=0.1)
    with open(tmp_path / MANIFEST_NAME, "a") as handle:
        handle.write('{"key": "b", "inp')  # killed mid-append
    manifest = Manifest(tmp_path)
    assert list(manifest.entries) == ["a"]
    assert (tmp_path / MANIFEST_NAME).read_text().count("\n") == 1
    (tmp_path / MANIFEST_NAME).write_text('garbage\n{"key": "a"}\n')
    with pytest.raises(ValueError, match="line 1 is not a manifest entry"):
        Manifest(tmp_path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        run_tasks(tasks(1), demo_work, tmp_path / "missing")
    with pytest.raises(ValueError, match="same output name 't00'"):
        run_tasks([BatchTask("t00", "1"), BatchTask("t00", "2")], demo_work, tmp_path)
    with pytest.raises(ValueError, match="workers must be a positive whole number"):
        open_client(workers=0)
    with pytest.raises(ValueError, match="scheduler file .* does not exist"):
        open_client(scheduler_file=tmp_path / "nope.json")


_DRIVER = textwrap.dedent("""
    import sys
    from niseg.batch._runner import BatchTask, demo_work, run_tasks
    out = sys.argv[1]
    tasks = [BatchTask(key=f"t{i:02d}", input=str(i)) for i in range(16)]
    report = run_tasks(tasks, demo_work, out, workers=2, resume=True,
                       shared={"factor": 5, "out_dir": out, "sleep": float(sys.argv[2])})
    print(len(report.done), len(report.skipped), len(report.failed))
""")


def _outputs(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*.txt"))}


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_outputs(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir()
    clean.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(killed), "0.4"], env=env,
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        manifest = killed / MANIFEST_NAME
        if manifest.exists() and len(manifest.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its nannies and workers
    proc.wait(timeout=30)
    partly = len(Manifest(killed).finished())
    assert 4 <= partly < 16
    done = subprocess.run([sys.executable, "-c", _DRIVER, str(killed), "0"], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    n_done, n_skipped, n_failed = map(int, done.stdout.split())
    assert n_failed == 0 and n_skipped >= partly and n_done + n_skipped == 16
    subprocess.run([sys.executable, "-c", _DRIVER, str(clean), "0"], env=env,
                   capture_output=True, text=True, timeout=300, check=True)
    assert _outputs(killed) == _outputs(clean) and len(_outputs(clean)) == 16
    assert not list(killed.rglob(".*.partial*"))
    assert sorted(Manifest(killed).finished()) == sorted(Manifest(clean).finished())
