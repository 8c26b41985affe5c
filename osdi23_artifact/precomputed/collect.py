"""Add finished S3@MAF2 Beta rows to the shipped precomputed file (maintainers' tool).

    python osdi23_artifact/precomputed/collect.py RUN_DIR/S3_maf2.tsv [MORE.tsv ...]
    python osdi23_artifact/precomputed/collect.py      # only drop stale rows, rewrite manifest

Takes the mp-search-sep rows of cases of the current Fig. 11 S3@MAF2 grid (stand-in trace,
current profile, exact search) from the given TSV files, merges them with the rows already
shipped in ``sec6_2_data/S3_maf2.tsv`` (a case already shipped keeps its row), writes the file
in grid order (a header only when no row is left) and rewrites ``manifest.json`` (profile,
MAF2 stand-in parameter digest, machine, time). Shipped rows are dropped when the manifest's MAF2
stand-in digest is not the current one: the case ids do not cover the stand-in's parameters, so
the digest is what tells that those rows came from another trace.
``tests/test_precomputed.py`` replays every shipped row's placement and checks its numbers.
Rows of the opt-in fast search never ship (DESIGN 7.8): a given file with a row whose
``search`` is not ``exact`` (or without the column) is refused before anything is written.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from alpa_serve.experiments.case_runner import default_database, profile_fingerprint
from alpa_serve.experiments.suites import SuiteOptions, build_suite
from alpa_serve.results import COLUMNS, SEARCH_EXACT, TsvFormatError, append_row, read_rows
from alpa_serve.workload.standin import DEFAULT_PARAMS

HERE = Path(__file__).resolve().parent
SHIPPED = HERE / "sec6_2_data" / "S3_maf2.tsv"
MANIFEST = HERE / "manifest.json"
POLICY = "mp-search-sep"


def grid() -> list:
    """The shipped file's cases: Fig. 11 S3@MAF2 Beta cases on the stand-in trace, grid order."""
    entries = build_suite("fig11", SuiteOptions(only_files=("S3_maf2.tsv",), traces="standin"))
    return [e.case for e in entries if e.case.policy == POLICY]


def shipped_rows_current(manifest: Path, digest: str) -> bool:
    """Whether the rows shipped beside ``manifest`` were computed on the MAF2 stand-in whose
    parameter digest is ``digest`` (no manifest: nothing to trust)."""
    if not manifest.exists():
        return False
    return json.loads(manifest.read_text()).get("maf2_standin_digest") == digest


def write_rows(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` (DESIGN 7.3 columns) to ``path`` atomically; a header only if empty."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    if rows:
        for r in rows:
            append_row(tmp, r)
    else:
        tmp.write_text("\t".join(COLUMNS) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def exact_rows(path: Path) -> list[dict]:
    """The rows of ``path``; TsvFormatError if one of them is not of the exact search (only
    exact rows ship) or the file has no ``search`` column."""
    rows = read_rows(path, columns=COLUMNS)
    other = sorted({r["search"] for r in rows if r["search"] != SEARCH_EXACT})
    if other:
        raise TsvFormatError(f"{path}: holds rows of search {', '.join(map(repr, other))}; only "
                             f"rows of the exact search ship precomputed (DESIGN 7.8)")
    return rows


def cpu_description() -> str:
    """The producing CPU: model name and numpy's SIMD levels found (rows are the same on every
    x86-64 CPU since the workload path is CPU-independent, DESIGN 4.3; recorded for the reader)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f
                          if ln.startswith("model name")), "")
    except OSError:
        pass
    simd = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    levels = "/".join(simd) or "baseline"
    return f"{model or platform.processor() or 'unknown'}; numpy SIMD {levels}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tsv", nargs="*", type=Path, help="result TSV files of S3@MAF2 runs")
    args = parser.parse_args(argv)
    db = default_database()
    digest = DEFAULT_PARAMS.digest("maf2")
    cases = grid()
    expected = {c.case_id: profile_fingerprint(c, db) for c in cases}
    order = {c.case_id: i for i, c in enumerate(cases)}
    rows: dict[str, dict] = {}
    keep_shipped = SHIPPED.exists() and shipped_rows_current(MANIFEST, digest)
    if SHIPPED.exists() and not keep_shipped:
        print(f"{SHIPPED}: shipped rows were computed on another MAF2 stand-in (manifest "
              f"digest differs from {digest}): dropped")
    sources = ([SHIPPED] if keep_shipped else []) + list(args.tsv)
    try:
        read = [exact_rows(path) for path in sources]  # everything is read before writing
    except (TsvFormatError, FileNotFoundError) as exc:
        print(f"collect.py: {exc}; nothing written", file=sys.stderr)
        return 2
    for source_rows in read:
        for r in source_rows:
            if r["case_id"] in order and r["profile"] == expected[r["case_id"]]:
                rows.setdefault(r["case_id"], r)
    write_rows(SHIPPED, [rows[cid] for cid in sorted(rows, key=order.__getitem__)])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()
    manifest = {
        "file": "sec6_2_data/S3_maf2.tsv",
        "cases_shipped": len(rows),
        "cases_in_grid": len(cases),
        "missing": [c.describe() for c in cases if c.case_id not in rows],
        "profiles": {t: db.get(t).fingerprint() for t in sorted(set(cases[0].model_types))},
        "maf2_standin_digest": digest,
        "search": SEARCH_EXACT,
        "solver_cpu_note": "solver_seconds are wall seconds of the producing machine",
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "cpu": cpu_description(),
        "python": sys.version.split()[0],
        "collected_at_commit": commit,
        "collected_on": datetime.date.today().isoformat(),
    }
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{SHIPPED}: {len(rows)} of {len(cases)} cases; manifest {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
