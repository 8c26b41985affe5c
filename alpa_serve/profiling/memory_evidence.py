"""Memory evidence from the published placements, as checkable constraints on profile weights.

``memory_evidence.tsv`` (published with the reference results; packaged in
``alpa_serve/data/reference/``, see the README there) lists every group composition seen in
the published placements: model family, policy, group config, the multiset of model types on
the group, and how often. Each row
gives two kinds of facts about the per-device weight ``w(model, config)`` = the model's largest
stage weight under that config (bytes):

* **fits** (every row): sum over the composition of count x w <= budget (13 GiB);
* **full** ("never more"): the greedy policies fill a group until no further model fits. For a
  row of a filling policy (every policy built on the fast greedy of DESIGN 6: sr-greedy,
  mp-search, mp-search-sep, mp-greedy-<k>) and each model type t that the policy could still
  have put on the group, adding one more t must exceed the budget. The
  candidate types are every type of the case's family, except for mp-search-sep, which clusters
  model types into separate groups: there only types already on the group count. We skip t when
  (a) the group already holds every copy of t that the case has (14 per type in
  ``all_transformers``, at least 10 in ``mixed``, 24 in ``bert-2.6b only``), or (b) the
  composition plus one t is itself contained in some observed composition of the same config
  (then it provably fits, so the group was not full, e.g. the policy stopped early at low load).
  Round-robin placements do not fill groups (a pass stops at the pointed group) and give
  "fits" facts only.

Run ``python -m alpa_serve.profiling.memory_evidence`` to check the committed database
(exit status 1 on any violation), ``--db PATH`` for another one, and ``--solve`` to print the
intervals of the cost model's weight allowances allowed by the evidence (docs/profiling.md).
"""
from __future__ import annotations

import argparse
import csv
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal, Mapping, Sequence

from alpa_serve.profiling.database import ParallelConfig, ProfilingDatabase
from alpa_serve.units import DEFAULT_MEM_BUDGET

logger = logging.getLogger(__name__)

#: Policies that add models to a group until none fits (the fast greedy of DESIGN 6), besides
#: mp-greedy-<k> (see :func:`fills_groups`).
FILL_POLICIES = ("sr-greedy", "mp-search", "mp-search-sep")
#: Filling policies whose groups only receive types of their own cluster.
CLUSTERED_POLICIES = ("mp-search-sep",)
#: Model types of each family (DESIGN 7.1).
FAMILY_TYPES: dict[str, tuple[str, ...]] = {
    "all_transformers": ("bert-6.7b", "bert-2.6b", "bert-1.3b"),
    "mixed": ("bert-6.7b", "moe-5.3b", "bert-2.6b", "moe-2.4b", "bert-1.3b", "moe-1.3b"),
    "bert-2.6b only": ("bert-2.6b",),
}
#: Copies of each type in the family's cases (the smallest case size where they differ:
#: synthetic mixed has 10 copies, S3 has 12; using 10 only drops facts, never adds wrong ones).
FAMILY_COPIES: dict[str, int] = {"all_transformers": 14, "mixed": 10, "bert-2.6b only": 24}


def default_evidence_path() -> Path:
    """The packaged copy of memory_evidence.tsv (alpa_serve/data/reference/)."""
    return Path(__file__).resolve().parents[1] / "data" / "reference" / "memory_evidence.tsv"


@dataclass(frozen=True)
class EvidenceRow:
    """One row of memory_evidence.tsv."""

    family: str
    policy: str
    config: ParallelConfig
    composition: tuple[tuple[str, int], ...]  # (model type, copies), sorted by type
    occurrences: int

    def counts(self) -> dict[str, int]:
        """Composition as a dict model type -> copies."""
        return dict(self.composition)

    def label(self) -> str:
        """Short human-readable description."""
        comp = ",".join(f"{m}x{c}" for m, c in self.composition)
        return (f"{self.family}/{self.policy} op{self.config.op}pp{self.config.pp} "
                f"[{comp}] seen {self.occurrences}x")


@dataclass(frozen=True)
class Constraint:
    """A linear fact about weights: 'fits' (load <= budget) or 'full' (load > budget).

    ``load`` is the sum of w(model, config) over ``counts`` (for 'full', including the one
    added model ``added``).
    """

    kind: Literal["fits", "full"]
    config: ParallelConfig
    counts: tuple[tuple[str, int], ...]
    added: str | None
    source: EvidenceRow

    def load(self, weight: Callable[[str, ParallelConfig], float]) -> float:
        """Total bytes per device of the (possibly extended) composition."""
        return sum(c * weight(m, self.config) for m, c in self.counts)

    def slack(self, weight: Callable[[str, ParallelConfig], float],
              budget: float = DEFAULT_MEM_BUDGET) -> float:
        """Bytes by which the constraint holds (negative: violated; 'full' needs > 0)."""
        load = self.load(weight)
        return budget - load if self.kind == "fits" else load - budget

    def holds(self, weight: Callable[[str, ParallelConfig], float],
              budget: float = DEFAULT_MEM_BUDGET) -> bool:
        """True if the constraint is satisfied by ``weight``."""
        s = self.slack(weight, budget)
        return s >= 0 if self.kind == "fits" else s > 0

    def describe(self) -> str:
        """What the constraint says, in words."""
        if self.kind == "fits":
            return f"fits: {self.source.label()} must be <= budget"
        return f"full: {self.source.label()} plus one {self.added} must exceed budget"


@dataclass(frozen=True)
class Violation:
    """A constraint the weights break, with the numbers (bytes)."""

    constraint: Constraint
    load: float
    budget: float

    def __str__(self) -> str:
        return (f"{self.constraint.describe()}: load {self.load:.6g} B vs budget "
                f"{self.budget:.6g} B")


# --------------------------------------------------------------------------------------------
# Reading and deriving constraints
# --------------------------------------------------------------------------------------------
def _parse_config(text: str) -> ParallelConfig:
    # "op4pp1" -> ParallelConfig(1, 4, 1)
    if not text.startswith("op") or "pp" not in text:
        raise ValueError(f"bad config {text!r}, expected like 'op4pp1'")
    op, pp = text[2:].split("pp")
    return ParallelConfig(1, int(op), int(pp))


def load_evidence(path: str | Path | None = None) -> list[EvidenceRow]:
    """Rows of memory_evidence.tsv (default: the packaged copy)."""
    path = Path(path) if path is not None else default_evidence_path()
    rows = []
    with open(path, newline="") as f:
        for rec in csv.DictReader(f, delimiter="\t"):
            comp: dict[str, int] = {}
            for part in rec["group_composition"].split(","):
                name, count = part.rsplit("x", 1)
                comp[name] = comp.get(name, 0) + int(count)
            rows.append(EvidenceRow(rec["model_family"], rec["policy"],
                                    _parse_config(rec["config"]), tuple(sorted(comp.items())),
                                    int(rec["occurrences"])))
    return rows


def _contained(small: Mapping[str, int], big: Mapping[str, int]) -> bool:
    return all(big.get(m, 0) >= c for m, c in small.items())


def fills_groups(policy: str) -> bool:
    """True for the policies whose placements come from the fast greedy, which stops only
    when no (group, model) pair fits (DESIGN 6): FILL_POLICIES and every mp-greedy-<k>."""
    return policy in FILL_POLICIES or re.fullmatch(r"mp-greedy-\d+", policy) is not None


def derive_constraints(rows: Sequence[EvidenceRow]) -> list[Constraint]:
    """All 'fits' and 'full' constraints implied by ``rows`` (rules in the module docstring)."""
    by_config: dict[ParallelConfig, list[dict[str, int]]] = {}
    for row in rows:
        by_config.setdefault(row.config, []).append(row.counts())
    out = []
    for row in rows:
        counts = row.counts()
        out.append(Constraint("fits", row.config, row.composition, None, row))
        if not fills_groups(row.policy):
            continue
        if row.family not in FAMILY_TYPES:
            raise ValueError(f"unknown model family {row.family!r} in memory evidence")
        candidates = (sorted(counts) if row.policy in CLUSTERED_POLICIES
                      else FAMILY_TYPES[row.family])
        for t in candidates:
            extended = dict(counts)
            extended[t] = extended.get(t, 0) + 1
            if extended[t] > FAMILY_COPIES[row.family]:
                continue  # every copy of t is already on the group
            if any(_contained(extended, seen) for seen in by_config[row.config]):
                continue  # observed to fit: the group was not full
            out.append(Constraint("full", row.config, tuple(sorted(extended.items())), t, row))
    return out


# --------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------
def check_weights(weight: Callable[[str, ParallelConfig], float],
                  constraints: Iterable[Constraint],
                  budget: float = DEFAULT_MEM_BUDGET) -> list[Violation]:
    """Violated constraints for the weight function ``weight(model, config)`` (bytes)."""
    return [Violation(c, c.load(weight), budget)
            for c in constraints if not c.holds(weight, budget)]


def database_weight_fn(db: ProfilingDatabase) -> Callable[[str, ParallelConfig], float]:
    """weight(model, config) = the model's largest stage weight in ``db`` (inf if missing)."""
    def weight(model: str, cfg: ParallelConfig) -> float:
        return db.get(model).max_stage_weight(cfg)
    return weight


def check_database(db: ProfilingDatabase, rows: Sequence[EvidenceRow] | None = None,
                   budget: float = DEFAULT_MEM_BUDGET) -> list[Violation]:
    """Violations of the evidence (default: the packaged file) by the weights of ``db``."""
    rows = load_evidence() if rows is None else rows
    return check_weights(database_weight_fn(db), derive_constraints(rows), budget)


# --------------------------------------------------------------------------------------------
# Solving for the cost model's weight allowances
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AllowanceSolution:
    """Result of ``solve_allowances`` (bytes).

    intervals: (model, pp) -> (lowest, highest) feasible allowance, each extreme taken over all
               solutions (the others adjust); values strictly inside are not jointly guaranteed,
               which is why ``chosen`` comes from one joint solve and is then re-checked.
    chosen:    (model, pp) -> a jointly feasible allowance near the middle of its interval.
    max_margin: the largest uniform slack (bytes) achievable on every constraint at once.
    """

    intervals: dict[tuple[str, int], tuple[float, float]]
    chosen: dict[tuple[str, int], float]
    max_margin: float


def solve_allowances(rows: Sequence[EvidenceRow] | None = None,
                     budget: float = DEFAULT_MEM_BUDGET, archs=None) -> AllowanceSolution:
    """Intervals of the weight allowance per (model, pp) allowed by the evidence.

    The cost model's stage weight is ``stage_weight(param_bytes, A[model, pp], op, pp)``, linear
    in the allowance A, so every constraint is linear in the A's. Three linear programs: the
    largest uniform margin; the min and max of each A (margin 0); and a chosen point that keeps
    at least half the largest margin while staying closest (L1) to the interval midpoints
    (clipped at 0: an allowance is extra memory).
    """
    import numpy as np
    from scipy.optimize import linprog

    from alpa_serve.profiling.cost_model import stage_weight
    from alpa_serve.profiling.params import MODEL_ARCHS

    archs = MODEL_ARCHS if archs is None else archs
    rows = load_evidence() if rows is None else rows
    constraints = derive_constraints(rows)
    keys = sorted({(m, c.config.pp) for c in constraints for m, _ in c.counts})
    index = {k: i for i, k in enumerate(keys)}
    n = len(keys)

    # Each constraint as  a . A <= b  (fits) or  -a . A <= -(b + 1)  (full, strict by one byte).
    a_rows, b_rows = [], []
    for c in constraints:
        a = np.zeros(n)
        const = 0.0
        for m, count in c.counts:
            p = archs[m].param_bytes()
            base = stage_weight(p, 0.0, c.config.op, c.config.pp)
            a[index[m, c.config.pp]] += count * (stage_weight(p, 1.0, c.config.op, c.config.pp)
                                                 - base)
            const += count * base
        if c.kind == "fits":
            a_rows.append(a)
            b_rows.append(budget - const)
        else:
            a_rows.append(-a)
            b_rows.append(-(budget + 1.0 - const))
    A = np.array(a_rows)
    b = np.array(b_rows)
    free = [(None, None)] * n

    def lp(cost, a_ub, b_ub, bounds):
        res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if res.status != 0:
            raise RuntimeError(f"memory evidence LP failed: {res.message}")
        return res

    # 1. Largest uniform margin t: A x + t <= b.
    k = len(b)
    res = lp(np.r_[np.zeros(n), -1.0], np.hstack([A, np.ones((k, 1))]), b,
             free + [(None, float(budget))])
    max_margin = float(res.x[-1])
    if max_margin < 0:
        raise RuntimeError(f"the evidence admits no allowances for this weight model "
                           f"(best margin {max_margin:.4g} bytes)")
    # 2. Marginal intervals.
    intervals = {}
    for key, i in index.items():
        e = np.zeros(n)
        e[i] = 1.0
        lo = lp(e, A, b, free).fun
        hi = -lp(-e, A, b, free).fun
        intervals[key] = (float(lo), float(hi))
    # 3. Chosen point: margin >= max_margin / 2, minimise sum |x - target|. The target is the
    # middle of the interval clipped to [0, highest single-device allowance of the model]: an
    # allowance is extra memory (>= 0), and a stage holds part of the model, so its extra
    # should not exceed what the whole model may carry (only matters for the loose pp=2 rows).
    def target(key):
        lo, hi = intervals[key]
        cap = intervals.get((key[0], 1), (lo, hi))[1]
        lo, hi = max(lo, 0.0), min(hi, cap)
        return (lo + hi) / 2 if lo <= hi else max(intervals[key][0], 0.0)
    mids = np.array([target(key) for key in keys])
    # Variables [x (n), d (n)] with d >= |x - mid|.
    eye = np.eye(n)
    a_ub = np.vstack([np.hstack([A, np.zeros((k, n))]),
                      np.hstack([eye, -eye]), np.hstack([-eye, -eye])])
    b_ub = np.r_[b - max_margin / 2, mids, -mids]
    res = lp(np.r_[np.zeros(n), np.ones(n)], a_ub, b_ub, [(0, None)] * n + [(0, None)] * n)
    chosen = {key: float(res.x[i]) for key, i in index.items()}
    return AllowanceSolution(intervals, chosen, max_margin)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Check a database against the evidence; print violations; 1 if any."""
    parser = argparse.ArgumentParser(
        prog="python -m alpa_serve.profiling.memory_evidence",
        description="Check profile weights against the published placements' memory evidence.")
    parser.add_argument("--db", help="database (.pkl or .json); default: the committed one")
    parser.add_argument("--evidence", help="memory_evidence.tsv; default: the packaged copy")
    parser.add_argument("--budget", type=float, default=DEFAULT_MEM_BUDGET,
                        help="bytes per device (default 13 GiB)")
    parser.add_argument("--solve", action="store_true",
                        help="also print allowance intervals and a chosen point for the cost model")
    args = parser.parse_args(argv)

    rows = load_evidence(args.evidence)
    db = ProfilingDatabase.load(args.db) if args.db else ProfilingDatabase.default()
    constraints = derive_constraints(rows)
    n_full = sum(c.kind == "full" for c in constraints)
    violations = check_weights(database_weight_fn(db), constraints, args.budget)
    print(f"{len(rows)} evidence rows -> {len(constraints) - n_full} 'fits' and {n_full} "
          f"'full' constraints; database fingerprint {db.fingerprint()}")
    for v in violations:
        print(f"VIOLATION {v}")
    if args.solve:
        sol = solve_allowances(rows, args.budget)
        print(f"largest uniform margin: {sol.max_margin / 1e6:.3f} MB")
        print(f"{'model':<12} {'pp':>3} {'lowest GB':>10} {'highest GB':>11} {'chosen GB':>10}")
        for (m, pp), (lo, hi) in sorted(sol.intervals.items()):
            print(f"{m:<12} {pp:>3} {lo / 1e9:>10.4f} {hi / 1e9:>11.4f} "
                  f"{sol.chosen[m, pp] / 1e9:>10.4f}")
    if violations:
        print(f"{len(violations)} violation(s)")
        return 1
    print("all constraints hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
