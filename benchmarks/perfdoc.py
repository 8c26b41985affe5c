"""Writing one benchmark's section of docs/performance.md (shared by the benchmarks)."""
from __future__ import annotations

import re
from pathlib import Path

#: The page every benchmark reports into.
PERF = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def write_section(heading: str, text: str, path: Path = PERF) -> None:
    """Replace the section that starts with the line ``heading`` (up to the next ``## `` heading)
    by ``text`` (which starts with that heading), or append it when the page has no such
    section; the rest of the page is left as it is."""
    old = path.read_text() if path.exists() else "# Performance\n"
    pat = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pat.search(old):
        new = pat.sub(lambda _m: text + "\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n")
