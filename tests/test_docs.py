"""The repository is self-contained: "DESIGN x.y" citations resolve to sections of
docs/design.md, nothing points at folders beside the repository, and the packaged reference
data is described and shipped."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
REFERENCE = ROOT / "alpa_serve" / "data" / "reference"
#: Where citations and paths are looked for (text files only): the library, the studies, the
#: benchmarks, the reviewer scripts, the tests, the docs and the CI scripts.
SCANNED = ("alpa_serve", "studies", "osdi23_artifact", "benchmarks", "tests", "docs",
           "README.md", ".ci")
SUFFIXES = {".py", ".md", ".sh", ".toml", ""}

CITATION = re.compile(r"DESIGN (\d+(?:\.\d+)?)")
HEADING = re.compile(r"^(?:## (\d+)\. |### (\d+\.\d+) )", re.M)

#: The section numbering the code's citations rely on (sections 1-10 and their subsections).
EXPECTED_SECTIONS = (
    ["1", "2", "3", "3.1", "3.2", "3.3", "3.4", "3.5", "4", "4.1", "4.2", "4.3", "5", "5.1",
     "5.2", "5.3", "6", "7", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "7.7", "7.8", "8", "9",
     "10"])


def design_sections(text: str) -> list[str]:
    """Section numbers of a design document, in order of appearance."""
    return [a or b for a, b in HEADING.findall(text)]


def text_files() -> list[Path]:
    """The scanned text files, this test file excepted (it holds bad examples on purpose)."""
    out = []
    for name in SCANNED:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        out += [p for p in files if p.suffix in SUFFIXES and "__pycache__" not in p.parts
                and p != Path(__file__).resolve()]
    return out


def citations(files: list[Path]) -> dict[str, list[str]]:
    """Cited section -> files citing it."""
    out: dict[str, list[str]] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number in set(CITATION.findall(text)):
            out.setdefault(number, []).append(path.name)
    return out


def missing_citations(cited: dict[str, list[str]], sections: list[str]) -> dict[str, list[str]]:
    return {n: files for n, files in cited.items() if n not in set(sections)}


def test_every_scanned_path_exists():
    # A scanned folder that was moved or renamed would silently leave its citations unchecked.
    assert [name for name in SCANNED if not (ROOT / name).exists()] == []


def test_design_has_the_cited_numbering_in_order():
    sections = design_sections(DESIGN.read_text(encoding="utf-8"))
    assert sections == EXPECTED_SECTIONS


def test_every_design_citation_names_a_section_of_docs_design():
    cited = citations(text_files())
    assert len(cited) >= 15 and "5.1" in cited and "6" in cited  # the scan finds the code's
    sections = design_sections(DESIGN.read_text(encoding="utf-8"))
    assert missing_citations(cited, sections) == {}


def test_a_citation_of_a_missing_section_is_reported(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("# as DESIGN 5.4 says; DESIGN 5.1 too; see DESIGN 11.\n")
    assert missing_citations(citations([f]), EXPECTED_SECTIONS) == {"5.4": ["x.py"],
                                                                      "11": ["x.py"]}


def test_nothing_points_outside_the_repository():
    # Paths into the workspace folder that sits beside some checkouts (never in a clone).
    outside = re.compile(r"\.\./shared\b|\bshared/(?:DESIGN|reference|seed)")
    offenders = [str(p.relative_to(ROOT)) for p in text_files()
                 if outside.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert offenders == []


def _package_data_patterns() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the one list literal
        match = re.search(r"^\[tool\.setuptools\.package-data\]\s*\nalpa_serve\s*=\s*(\[.*?\])",
                          text, re.M | re.S)
        assert match, "pyproject.toml lacks [tool.setuptools.package-data] alpa_serve"
        return ast.literal_eval(match.group(1))
    return tomllib.loads(text)["tool"]["setuptools"]["package-data"]["alpa_serve"]


def test_package_data_ships_every_data_file():
    package = ROOT / "alpa_serve"
    shipped = {p for pattern in _package_data_patterns() for p in package.glob(pattern)}
    data = {p for p in (package / "data").rglob("*") if p.is_file()}
    assert (REFERENCE / "calibration_targets.tsv") in data
    assert sorted(str(p.relative_to(package)) for p in data - shipped) == []


def test_reference_readme_describes_every_file():
    readme = (REFERENCE / "README.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in REFERENCE.iterdir() if p.is_file() and p.name != "README.md")
    assert {"calibration_targets.tsv", "memory_evidence.tsv"} <= set(files)
    assert [f for f in files if f"`{f}`" not in readme] == []
