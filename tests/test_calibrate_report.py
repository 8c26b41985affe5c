"""The calibration report (studies/calibration/calibrate.py): the committed case-by-case file
studies/calibration/results.md is exactly what the script writes for its rows, and the summary in
docs/calibration.md is the one those rows give (no case is run here)."""
from __future__ import annotations

import re
from pathlib import Path

from studies.calibration import calibrate as C

ROOT = Path(__file__).resolve().parents[1]


def committed_rows() -> tuple[list[dict], str]:
    """The rows and the profile fingerprint of the committed results file, parsed back."""
    text = C.RESULTS.read_text(encoding="utf-8")
    rows = []
    for line in text.split("### Case by case", 1)[1].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 8 or not re.match(r"^[+-]\d", cells[5]):
            continue
        rows.append(dict(set=cells[0], policy=cells[1], x=cells[2].replace(" (low weight)", ""),
                         published=float(cells[3]), ours=float(cells[4]), diff=float(cells[5]),
                         published_configs=cells[6], our_configs=cells[7].removesuffix(" *")))
    fingerprint = re.search(r"fingerprint `(\w+)`", text)
    assert fingerprint
    return rows, fingerprint.group(1)


def test_results_file_is_what_the_script_writes():
    rows, fp = committed_rows()
    assert len(rows) >= 60
    text = C.markdown(rows, fp, "python studies/calibration/calibrate.py")
    assert text == C.RESULTS.read_text(encoding="utf-8")


def test_doc_summary_matches_the_results_file():
    rows, fp = committed_rows()
    doc = C.DOC.read_text(encoding="utf-8")
    generated = C.BEGIN + doc.split(C.BEGIN, 1)[1].split(C.END, 1)[0] + C.END + "\n"
    block = C.doc_block(rows, fp, "python studies/calibration/calibrate.py",
                        "studies/calibration/results.md")
    assert generated == block
    assert "### Case by case" not in doc


def test_write_replaces_only_the_marked_part(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# Page\n\nmethod\n\n{C.BEGIN}\nold\n{C.END}\n\n## After\n")
    C.write(page, f"{C.BEGIN}\nnew\n{C.END}\n")
    assert page.read_text() == f"# Page\n\nmethod\n\n{C.BEGIN}\nnew\n{C.END}\n\n## After\n"
    fresh = tmp_path / "fresh.md"
    C.write(fresh, f"{C.BEGIN}\nx\n{C.END}\n")
    assert fresh.read_text().startswith("# Calibration\n\n" + C.BEGIN)


def test_subset_run_writes_only_its_output(tmp_path, monkeypatch):
    rows, fp = committed_rows()
    monkeypatch.setattr(C, "run", lambda sets, policies, log=print: (rows[:2], fp))
    out = tmp_path / "cal.md"
    doc_before = C.DOC.read_text(encoding="utf-8")
    assert C.main(["--out", str(out)]) == 0
    assert "### Case by case" in out.read_text()
    assert C.DOC.read_text(encoding="utf-8") == doc_before
