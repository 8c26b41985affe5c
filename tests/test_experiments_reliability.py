"""Reliability guarantees of the experiment runner (docs/experiments.md, "Resume and guarantees"):
nothing a user already has is modified or lost, and every refusal comes before work starts.

Each test reproduces a failure: an interrupted --force run, a foreign file, an unusable output
folder (a real file; a mocked OSError, since tests may run as root), a full disk, a second run
holding the folder, a killed process's leftovers, a SIGTERM under Ray, a port that answers
but is no Ray cluster.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from subprocess_signals import signal_during_ray_start
from test_experiments import _case, _row, _small_entries, tiny_database

from alpa_serve.experiments import (
    outputs as outputs_mod,
    scheduling as sched_mod,
    suite_runner as runner_mod,
)
from alpa_serve.experiments.__main__ import main as cli_main
from alpa_serve.experiments.lock import LOCK_NAME, folder_lock
from alpa_serve.experiments.suite_runner import (
    OutputWriteError,
    RunnerError,
    RunOptions,
    backup_path,
    run_entries,
)
from alpa_serve.experiments.tsv import (
    COLUMNS,
    TsvFormatError,
    append_row,
    inspect_result_file,
    read_rows,
    repair_partial_tail,
    rows_without_timing,
)
from alpa_serve.workload import tempdirs

REPO = Path(__file__).resolve().parent.parent
_REAL_RUN_PREPARED = sched_mod.run_prepared


@pytest.fixture(scope="module")
def db():
    return tiny_database()


def _opts(out: Path, **kw) -> RunOptions:
    return RunOptions(out_dir=out, serial=True, progress=False, **kw)


@pytest.fixture()
def count_runs(monkeypatch):
    """Counts the cases the runner simulates (the real run_prepared is still called)."""
    calls: list[str] = []
    real = sched_mod.run_prepared

    def counting(case, db_, inputs, *rest):
        calls.append(case.case_id)
        return real(case, db_, inputs, *rest)

    monkeypatch.setattr(sched_mod, "run_prepared", counting)
    return calls


def _interrupt_after(monkeypatch, n: int) -> None:
    """From now on, the (n+1)-th simulated case raises KeyboardInterrupt (a Ctrl-C mid-run)."""
    real = _REAL_RUN_PREPARED
    calls = {"n": 0}

    def crashing(case, db_, inputs, *rest):
        calls["n"] += 1
        if calls["n"] > n:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return real(case, db_, inputs, *rest)

    monkeypatch.setattr(sched_mod, "run_prepared", crashing)


def _error_lines(caplog) -> list[str]:
    """The ERROR records of a command-line run (in-process, logging goes to caplog); none
    may carry a traceback."""
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(r.exc_info is None for r in records)
    return [r.getMessage() for r in records]


def _subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


# ---------------------------------------------------------------------------
# 1. --force never overwrites a backup
# ---------------------------------------------------------------------------

def test_backup_names_never_reuse_an_existing_file(tmp_path):
    path = tmp_path / "a.tsv"
    assert backup_path(path).name == "a.tsv.bak"
    (tmp_path / "a.tsv.bak").write_text("x")
    assert backup_path(path).name == "a.tsv.bak1"
    (tmp_path / "a.tsv.bak1").write_text("y")
    assert backup_path(path).name == "a.tsv.bak2"


def test_interrupted_force_rerun_keeps_the_original_results(tmp_path, db, monkeypatch):
    entries = _small_entries()
    a_entries = [e for e in entries if e.file == "a.tsv"]
    run_entries(a_entries, _opts(tmp_path), db=db)
    original = (tmp_path / "a.tsv").read_bytes()
    assert len(read_rows(tmp_path / "a.tsv")) == len(a_entries)
    # --force, interrupted after one case; then the same command again, interrupted again
    _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_entries(a_entries, _opts(tmp_path, force=True), db=db)
    assert (tmp_path / "a.tsv.bak").read_bytes() == original
    first_partial = (tmp_path / "a.tsv").read_bytes()
    _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_entries(a_entries, _opts(tmp_path, force=True), db=db)
    assert (tmp_path / "a.tsv.bak").read_bytes() == original  # the original is never lost
    assert (tmp_path / "a.tsv.bak1").read_bytes() == first_partial
    # a plain rerun resumes the partial file
    monkeypatch.undo()
    summary = run_entries(a_entries, _opts(tmp_path), db=db)
    assert summary.ok and summary.skipped == 1 and summary.ran == len(a_entries) - 1
    assert rows_without_timing(tmp_path / "a.tsv") == rows_without_timing(tmp_path / "a.tsv.bak")


def test_cli_interrupt_message_says_what_a_rerun_does(tmp_path, monkeypatch, caplog):
    from alpa_serve.experiments import __main__ as main_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(main_mod, "run_suite", interrupted)
    with caplog.at_level(logging.ERROR):
        assert cli_main(["fig12", "--quick", "--out", str(tmp_path), "--force"]) == 130
    assert "rerun without --force to resume" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert cli_main(["fig12", "--quick", "--out", str(tmp_path)]) == 130
    assert "rerun the same command to resume" in caplog.text


# ---------------------------------------------------------------------------
# 2. A file we did not write is refused untouched
# ---------------------------------------------------------------------------

#: A TSV as the original artifact wrote it: its own header, no final newline.
ARTIFACT_TSV = ("exp_name\tnum_devices\tgoodput\tpolicy\n"
                "goodput_vs_num_devices\t8\t0.51\tsr-greedy\n"
                "goodput_vs_num_devices\t16\t0.93\tsr-greedy")


@pytest.mark.parametrize("content", [ARTIFACT_TSV.encode(), bytes(range(256)) * 4,
                                     b"exp_name\tgoodput\n\xff\xfe\x80 not text\n\x81"],
                         ids=["artifact-tsv", "random-bytes", "not-utf8"])
def test_foreign_file_is_refused_unchanged_before_any_case(tmp_path, db, count_runs, content):
    entries = _small_entries()
    (tmp_path / "b.tsv").write_bytes(content)
    with pytest.raises(TsvFormatError, match=r"b\.tsv.*not a result file of this runner"):
        run_entries(entries, _opts(tmp_path), db=db)
    assert (tmp_path / "b.tsv").read_bytes() == content
    assert count_runs == [] and not (tmp_path / "a.tsv").exists()
    # --force does not move it either
    with pytest.raises(TsvFormatError):
        run_entries(entries, _opts(tmp_path, force=True), db=db)
    assert (tmp_path / "b.tsv").read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tsv"]
    # the repair function on its own refuses too
    with pytest.raises(TsvFormatError):
        repair_partial_tail(tmp_path / "b.tsv")
    assert (tmp_path / "b.tsv").read_bytes() == content


def test_cut_header_and_cut_row_are_ours_and_repaired(tmp_path, db):
    header = "\t".join(COLUMNS) + "\n"
    path = tmp_path / "a.tsv"
    path.write_text(header[:25])  # killed while writing the header
    state = inspect_result_file(path)
    assert state.rows == [] and state.partial_tail == 25
    assert repair_partial_tail(path) and path.read_bytes() == b""
    append_row(path, _row(_case()))
    with open(path, "a") as f:
        f.write("goodput_vs_rate\tsynth")  # killed while writing a row
    state = inspect_result_file(path)
    assert len(state.rows) == 1 and state.lines == [2] and state.partial_tail == 21


# ---------------------------------------------------------------------------
# 3. Errors before the work, write errors as one line
# ---------------------------------------------------------------------------

def test_out_that_is_a_file_is_refused(tmp_path, caplog):
    out = tmp_path / "results"
    out.write_text("my notes\n")
    code = cli_main(["fig12", "--quick", "--serial", "--no-progress", "--out", str(out)])
    assert code == 2 and out.read_text() == "my notes\n"
    (line,) = _error_lines(caplog)
    assert "exists and is not a folder" in line


def test_unwritable_out_folder_is_refused_before_any_case(tmp_path, db, count_runs,
                                                          monkeypatch):
    from alpa_serve.experiments import lock as lock_mod

    real_open = os.open

    def denied(path, *args, **kwargs):  # as a folder without write permission does
        if str(path).endswith(LOCK_NAME):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(lock_mod.os, "open", denied)
    with pytest.raises(RunnerError, match="cannot write to the output folder.*Permission denied"):
        run_entries(_small_entries(), _opts(tmp_path), db=db)
    assert count_runs == [] and list(tmp_path.iterdir()) == []


def test_unwritable_existing_file_is_refused_before_any_case(tmp_path, db, count_runs,
                                                             monkeypatch):
    import builtins

    entries = _small_entries()
    run_entries(entries[:1], _opts(tmp_path), db=db)
    count_runs.clear()
    before = (tmp_path / "a.tsv").read_bytes()
    real_open = builtins.open

    def read_only(file, mode="r", *args, **kwargs):
        if str(file).endswith("a.tsv") and any(c in mode for c in "aw+"):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only)
    with pytest.raises(RunnerError, match=r"cannot write to .*a\.tsv: Permission denied"):
        run_entries(entries, _opts(tmp_path), db=db)
    monkeypatch.setattr(builtins, "open", real_open)
    assert count_runs == [] and (tmp_path / "a.tsv").read_bytes() == before


def _disk_full_after(monkeypatch, n: int) -> None:
    """Row writes after the n-th fail as on a full disk (after writing part of the line)."""
    real = outputs_mod.append_row
    calls = {"n": 0}

    def filling(path, row, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n:
            new = not Path(path).exists() or Path(path).stat().st_size == 0
            with open(path, "a") as f:  # the part that still fitted
                f.write("\t".join(COLUMNS)[:30] if new else "goodput_vs_")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, row, *args, **kwargs)

    monkeypatch.setattr(outputs_mod, "append_row", filling)


def test_disk_full_mid_run_stops_with_the_path_and_resumes(tmp_path, db, monkeypatch):
    entries = _small_entries()
    _disk_full_after(monkeypatch, 3)
    with pytest.raises(OutputWriteError, match=r"cannot write a row to .*\.tsv: No space left"):
        run_entries(entries, _opts(tmp_path), db=db)
    monkeypatch.undo()
    summary = run_entries(entries, _opts(tmp_path), db=db)
    assert summary.ok and summary.skipped == 3
    ids = Counter()
    for name in ("a.tsv", "b.tsv"):
        ids.update(r["case_id"] for r in read_rows(tmp_path / name))
    assert ids == Counter({e.case.case_id: 1 for e in entries})


def test_cli_disk_full_is_one_line_and_nonzero(tmp_path, monkeypatch, caplog):
    _disk_full_after(monkeypatch, 2)
    code = cli_main(["fig12", "--quick", "--serial", "--no-progress", "--out", str(tmp_path)])
    assert code == 1
    (line,) = _error_lines(caplog)
    assert "large_model_exp.tsv: No space left on device" in line
    assert "rerun the same command" in line
    state = inspect_result_file(tmp_path / "large_model_exp.tsv")
    assert len(state.rows) == 2 and state.partial_tail == len("goodput_vs_")


# ---------------------------------------------------------------------------
# 4. One run per output folder; duplicates are reported
# ---------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from alpa_serve.experiments.lock import folder_lock
with folder_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_second_run_is_refused_and_a_killed_holder_does_not_block(tmp_path, db, count_runs):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, env=_subprocess_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunnerError) as exc:
            run_entries(_small_entries(), _opts(tmp_path), db=db)
        message = str(exc.value)
        assert "another run is writing to" in message and f"pid {holder.pid}" in message
        assert socket.gethostname() in message and "-c" in message
        assert count_runs == [] and not (tmp_path / "a.tsv").exists()
    finally:
        holder.kill()  # SIGKILL: no clean-up code of the holder runs
        holder.wait()
    assert (tmp_path / LOCK_NAME).exists()  # left behind by the killed holder
    summary = run_entries(_small_entries(), _opts(tmp_path), db=db)
    assert summary.ok and summary.ran == len(_small_entries())
    assert not (tmp_path / LOCK_NAME).exists()  # a finished run removes its lock file


def test_lock_is_exclusive_within_a_process_and_released(tmp_path):
    with folder_lock(tmp_path):
        with pytest.raises(Exception, match=f"pid {os.getpid()}"):
            with folder_lock(tmp_path):
                pass
    with folder_lock(tmp_path):
        pass


def test_duplicate_case_ids_are_reported_not_merged(tmp_path, db, count_runs, caplog):
    entries = _small_entries()
    run_entries(entries, _opts(tmp_path), db=db)
    lines = (tmp_path / "a.tsv").read_text().splitlines(keepends=True)
    # what two concurrent runs left: the same case written twice
    (tmp_path / "a.tsv").write_text("".join(lines + lines[1:3]))
    before = (tmp_path / "a.tsv").read_bytes()
    count_runs.clear()
    with caplog.at_level(logging.WARNING):
        summary = run_entries(entries, _opts(tmp_path), db=db)
    assert summary.ran == 0 and count_runs == []
    assert (tmp_path / "a.tsv").read_bytes() == before
    dup = [r.getMessage() for r in caplog.records if "more than once" in r.getMessage()]
    assert len(dup) == 1 and "a.tsv holds 2 case id(s)" in dup[0]
    first_id = lines[1].rstrip("\n").split("\t")[COLUMNS.index("case_id")]
    assert f"{first_id} on lines 2, {len(lines) + 1}" in dup[0]
    assert "Delete the extra lines" in dup[0]


# ---------------------------------------------------------------------------
# 5. Temporary folders left by killed processes are removed
# ---------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _age(folder: Path, seconds: float) -> None:
    t = time.time() - seconds
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (t, t))
    os.utime(folder, (t, t))


def test_stale_temp_dirs(tmp_path):
    host = tempdirs._host()
    mine = tempdirs.make_temp_dir(tmp_path, ".tmp-")
    assert mine.name.startswith(f".tmp-pid{os.getpid()}@{host}~")
    (mine / "part.npy").write_bytes(b"x")
    dead = tmp_path / f".tmp-pid{_dead_pid()}@{host}~abc"
    other_host_old = tmp_path / ".tmp-pid1@elsewhere.example~abc"
    other_host_new = tmp_path / ".tmp-pid1@elsewhere.example~def"
    legacy_old = tmp_path / ".build-k2j3h4g5"  # tempfile.mkdtemp name, no owner
    legacy_new = tmp_path / ".build-a1b2c3d4"
    unrelated = tmp_path / ".tmp-notes"
    final = tmp_path / "maf1-standin-0123"
    for d in (dead, other_host_old, other_host_new, legacy_old, legacy_new, unrelated, final):
        d.mkdir()
        (d / "f").write_bytes(b"y")
    for d in (other_host_old, legacy_old, unrelated, final):
        _age(d, 2 * tempdirs.STALE_AFTER_SECONDS)
    removed = tempdirs.remove_stale_temp_dirs(tmp_path, (".tmp-", ".build-"))
    assert sorted(p.name for p in removed) == sorted([dead.name, other_host_old.name,
                                                      legacy_old.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, other_host_new.name, legacy_new.name, unrelated.name, final.name])


GENERATE_AND_HANG = """
import sys, time
from pathlib import Path
from alpa_serve.workload import standin

def slow(out, params):
    (Path(out) / "part.csv").write_bytes(b"x" * 1000)
    print("generating", flush=True)
    time.sleep(120)

standin.generate_maf1_standin = slow
standin.ensure_standin("maf1", Path(sys.argv[1]))
"""


def test_standin_generation_killed_leaves_nothing_after_the_next_run(tmp_path, monkeypatch):
    from alpa_serve.workload import standin

    proc = subprocess.Popen([sys.executable, "-c", GENERATE_AND_HANG, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, env=_subprocess_env())
    try:
        assert proc.stdout.readline().strip() == "generating"
    finally:
        proc.kill()
        proc.wait()
    (left,) = [p for p in tmp_path.iterdir() if p.name.startswith(".maf1-standin-")]
    assert (left / "part.csv").exists()

    def fast(out, params):
        (Path(out) / "part.csv").write_bytes(b"y")

    monkeypatch.setattr(standin, "generate_maf1_standin", fast)
    out = standin.ensure_standin("maf1", tmp_path)
    assert (out / "DONE").is_file() and not left.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_trace_preprocessing_leftovers_are_removed(tmp_path):
    from alpa_serve.workload.trace import open_trace

    raw = tmp_path / "raw"
    raw.mkdir()
    header = ["HashOwner", "HashApp", "HashFunction", "Trigger"] + [str(i) for i in range(1, 1441)]
    rows = [",".join(header)] + [",".join(["o", "a", f"f{k}", "http"] + ["1"] * 1440)
                                 for k in range(3)]
    (raw / "invocations_per_function_md.anon.d01.csv").write_text("\n".join(rows) + "\n")
    pre = tmp_path / "cache" / "preprocessed"
    pre.mkdir(parents=True)
    host, pid = tempdirs._host(), _dead_pid()
    left = [pre / f".tmp-pid{pid}@{host}~x1", pre / f".build-pid{pid}@{host}~x2"]
    for d in left:
        d.mkdir()
        (d / "func00.npy").write_bytes(b"z")
    trace = open_trace("maf1", raw, cache_dir=tmp_path / "cache")
    assert trace.cache_path.parent == pre
    assert sorted(p.name for p in pre.iterdir()) == [trace.cache_path.name]


# ---------------------------------------------------------------------------
# 6. One-line errors, SIGTERM, --connect-timeout, invalid values
# ---------------------------------------------------------------------------

def test_malformed_trace_is_one_line_before_any_case(tmp_path, monkeypatch, caplog):
    from alpa_serve.experiments import trace_inputs as traces_mod

    raw = tmp_path / "maf1raw"
    raw.mkdir()
    (raw / "invocations_per_function_md.anon.d01.csv").write_text("not,a,maf1,file\n1,2,3,4\n")
    monkeypatch.setenv("ALPA_SERVE_MAF1_PATH", str(raw))
    monkeypatch.setenv("ALPA_SERVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(traces_mod, "_CACHE", {})
    out = tmp_path / "out"
    code = cli_main(["fig13", "--quick", "--serial", "--no-progress", "--traces", "real",
                     "--only", "robust_pair1.tsv", "--out", str(out)])
    assert code == 2
    (line,) = _error_lines(caplog)
    assert "invocations_per_function_md.anon.d01.csv" in line
    assert list(out.iterdir()) == []  # no case ran, no row written


def test_broken_packaged_profile_is_one_line(tmp_path, monkeypatch, caplog):
    from alpa_serve import model_sets
    from alpa_serve.profiling import ProfilingDatabase

    broken = tmp_path / "profiling_result.pkl"
    broken.write_bytes(pickle.dumps({"format": "alpa_serve.profiling/v1", "models": {}}))
    monkeypatch.setattr(ProfilingDatabase, "default_path", classmethod(lambda cls: broken))
    monkeypatch.setattr(model_sets, "_DEFAULT_DB", None)
    code = cli_main(["fig12", "--quick", "--serial", "--no-progress", "--out",
                     str(tmp_path / "out")])
    assert code == 2
    (line,) = _error_lines(caplog)
    assert str(broken) in line and "'models' is empty" in line


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf")])
def test_slo_scale_must_be_positive(value):
    with pytest.raises(ValueError, match="slo_scale must be a finite number > 0"):
        _case(slo_scale=value)
    with pytest.raises(ValueError, match="mem_budget"):
        _case(mem_budget=value)


def _log_time(line: str) -> float:
    stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})", line).group(1)
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_connect_timeout_bounds_ray_init(tmp_path):
    """A port that accepts TCP connections but is no Ray GCS: ray.init retries for minutes;
    --connect-timeout 3 must end the attempt about 3 s after it starts."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "alpa_serve.experiments", "fig14", "--quick", "--no-progress",
             "--ray-address", f"127.0.0.1:{port}", "--connect-timeout", "3",
             "--out", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=120, env=_subprocess_env(), cwd=REPO)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    (start,) = [ln for ln in lines if "joining the Ray cluster" in ln]
    (error,) = [ln for ln in lines if " ERROR " in ln]
    assert "did not complete within 3 s" in error
    assert 2.5 <= _log_time(error) - _log_time(start) <= 6.0
    assert "Traceback" not in proc.stderr
    assert list((tmp_path / "out").glob("*.tsv")) == []


def test_sigterm_under_ray_is_an_interrupt(tmp_path):
    """SIGTERM during an embedded-Ray run: exit 130, finished rows kept, resumable."""
    out = tmp_path / "out"
    tsv = out / "large_model_exp.tsv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "alpa_serve.experiments", "fig12", "--quick", "--no-progress",
         "--num-cpus", "1", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_subprocess_env(),
        cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if tsv.exists() and tsv.read_text().count("\n") >= 2:  # header + a row
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "rerun the same command to resume" in err
    rows = read_rows(tsv)
    assert 1 <= len(rows) < 30
    assert not (out / LOCK_NAME).exists()


# ---------------------------------------------------------------------------
# 7. Progress bar: copied rows and set-up time do not count toward the rate
# ---------------------------------------------------------------------------

def test_progress_rate_counts_only_cases_run_now(tmp_path, db, monkeypatch):
    entries = _small_entries()[:4]
    seed = tmp_path / "seed"
    run_entries(entries[:3], _opts(seed), db=db)
    bars = []
    real_progress = runner_mod.progress_bar

    def recording(total, initial, desc, enabled, file=None):
        bar = real_progress(total, initial, desc, True, file=io.StringIO())
        bars.append(bar)
        return bar

    real_jobs, real_run = sched_mod.group_jobs, sched_mod.run_prepared
    setup_done = []

    def slow_setup(todo):  # set-up before the first case (as Ray's start): not in the rate
        time.sleep(0.5)
        setup_done.append(time.time())
        return real_jobs(todo)

    def slow_case(case, db_, inputs, *rest):
        time.sleep(0.2)
        return real_run(case, db_, inputs, *rest)

    monkeypatch.setattr(runner_mod, "progress_bar", recording)
    monkeypatch.setattr(sched_mod, "group_jobs", slow_setup)
    monkeypatch.setattr(sched_mod, "run_prepared", slow_case)
    summary = run_entries(entries, _opts(tmp_path / "out", seed_dir=seed), db=db)
    assert summary.seeded == 3 and summary.ran == 1
    fd = bars[0].format_dict
    assert fd["initial"] == 3 and fd["n"] == 4 and fd["total"] == 4
    # the one case run now is the only one in the rate: rate x elapsed = 1 case, not 4
    rate = fd["rate"] if fd["rate"] else (fd["n"] - fd["initial"]) / fd["elapsed"]
    assert rate * fd["elapsed"] == pytest.approx(1.0, rel=0.2)
    # and the clock started after the set-up that preceded the first case
    assert bars[0].start_t >= setup_done[0] - 0.01


# ---------------------------------------------------------------------------
# 8. Round 2: command-line values, calibration targets, signals during Ray start-up,
#    the sub-problem cache
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [("--connect-timeout", "-1"),
                                         ("--connect-timeout", "nan"),
                                         ("--connect-timeout", "inf"),
                                         ("--connect-timeout", "0"),
                                         ("--connect-timeout", "soon"),
                                         ("--num-cpus", "0"), ("--num-cpus", "two")])
def test_bad_ray_flags_are_one_line_usage_errors(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["fig14", "--quick", "--out", str(tmp_path / "out"), flag, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{flag} must be" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", [-1.0, 0.0, float("nan"), float("inf")])
def test_run_options_refuse_a_bad_connect_timeout(tmp_path, value):
    with pytest.raises(ValueError, match="connect_timeout must be a finite number"):
        RunOptions(out_dir=tmp_path, connect_timeout=value)


_TARGETS_HEADER = "\t".join(["set", "experiment", "policy", "x", "goodput", "num_devices",
                             "num_models", "model_type", "total_rate", "slo_scale",
                             "workload_kwargs", "chosen_group_configs"]) + "\n"


@pytest.mark.parametrize("content, fragment", [
    (bytes(range(256)) * 8, "is not UTF-8 text"),
    (b"a\tb\n1\t2\n", "lacks the column(s) set, experiment"),
    (b"", "lacks the column(s)"),
    (_TARGETS_HEADER.encode(), "holds no targets"),
    ((_TARGETS_HEADER + "synthetic\tgoodput\tsr-greedy\n").encode(),
     ":2: the row has 3 tab-separated values, the header 12"),
    ((_TARGETS_HEADER + "synthetic\tgoodput\tsr-greedy\t1\t0.9\tmany\t4\tS1\t1\t5\tcv=4"
      "\top1pp1x4\n").encode(), ":2: cannot read calibration target"),
], ids=["binary", "other-columns", "empty", "no-rows", "short-row", "bad-value"])
def test_bad_calibration_targets_are_one_line(tmp_path, caplog, content, fragment):
    targets = tmp_path / "targets.tsv"
    targets.write_bytes(content)
    code = cli_main(["calibration", "--quick", "--serial", "--no-progress", "--targets",
                     str(targets), "--out", str(tmp_path / "out")])
    assert code == 2
    (line,) = _error_lines(caplog)
    assert fragment in line and str(targets) in line
    assert targets.read_bytes() == content
    assert list((tmp_path / "out").glob("*.tsv")) == []


def _processes_with(marker: str) -> list[str]:
    """Command lines of the processes whose environment holds ``marker`` (a run's
    descendants: Ray passes the environment on to the raylet and its agents)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if marker.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes()[:80].decode(
                    errors="replace"))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_ray_start_is_an_interrupt_and_leaves_no_process(tmp_path, sig):
    """SIGTERM or SIGINT while ray.init starts the embedded instance: status 130 with the
    interrupt message, and none of Ray's processes (raylet, dashboard and runtime-env agents)
    outlives the run."""
    marker = f"ALPA_SERVE_TEST_{os.getpid()}_{sig}_{time.monotonic_ns()}"
    env = _subprocess_env()
    env[marker] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "alpa_serve.experiments", "fig14", "--quick", "--no-progress",
         "--num-cpus", "1", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    err = signal_during_ray_start(proc, sig)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 20
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_with(marker) == []


def _sep_entries() -> list:
    from alpa_serve.experiments.suites import SuiteEntry

    return [SuiteEntry("a.tsv", _case(policy="mp-search-sep", model_set="S3", num_devices=4))]


def test_subproblem_cache_path_that_is_a_file_is_left_alone(tmp_path, db, caplog):
    reference = tmp_path / "reference"
    run_entries(_sep_entries(), _opts(reference, share_subproblems=False), db=db)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".subproblems").write_bytes(b"the user's own file")
    summary = run_entries(_sep_entries(), _opts(out), db=db)
    assert summary.ok and summary.ran == 1
    assert (out / ".subproblems").read_bytes() == b"the user's own file"
    assert rows_without_timing(out / "a.tsv") == rows_without_timing(reference / "a.tsv")
    assert any(".subproblems exists and is not a folder" in r.getMessage()
               for r in caplog.records)


def test_subproblem_leftovers_of_a_killed_run_are_removed(tmp_path, db):
    cache = tmp_path / ".subproblems"
    cache.mkdir()
    (cache / ".tmp-abc123.json").write_text('{"placement": ')  # a write cut by kill -9
    (cache / "notes.txt").write_text("not ours to remove")
    summary = run_entries(_sep_entries(), _opts(tmp_path), db=db)
    assert summary.ok
    names = sorted(p.name for p in cache.iterdir())
    assert ".tmp-abc123.json" not in names and "notes.txt" in names
    assert any(n.endswith(".json") and not n.startswith(".") for n in names)


def test_failed_subproblem_write_skips_the_cache_not_the_case(tmp_path, db, monkeypatch,
                                                              caplog):
    from alpa_serve.placement import subproblems

    def full(self, key, placement, score):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(subproblems.DirectoryStore, "put", full)
    reference = tmp_path / "reference"
    run_entries(_sep_entries(), _opts(reference, share_subproblems=False), db=db)
    summary = run_entries(_sep_entries(), _opts(tmp_path / "out"), db=db)
    assert summary.ok and summary.ran == 1
    assert rows_without_timing(tmp_path / "out" / "a.tsv") == \
        rows_without_timing(reference / "a.tsv")
    assert any("cannot keep solved sub-problems" in r.getMessage()
               and "No space left on device" in r.getMessage() for r in caplog.records)
