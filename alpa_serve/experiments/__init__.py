"""Experiments: case definitions, the grids of every figure, ``run_case``, the Ray runner, TSV I/O.

Public API (DESIGN 10)::

    from alpa_serve.experiments import run_case, Case, SyntheticWorkload, TraceWorkload
    row = run_case(Case(exp_name="goodput_vs_rate", model_set="S1", num_devices=4,
                        num_models=4, policy="mp-search", slo_scale=5,
                        workload=SyntheticWorkload(total_rate=4, cv=4, duration=60)))

Command line: ``python -m alpa_serve.experiments <suite> --out DIR [--quick] [--serial] ...``
(see docs/experiments.md).
"""

from alpa_serve.experiments.case_runner import (
    CaseInputs,
    CaseResult,
    case_models,
    inputs_key,
    prepare_inputs,
    run_case,
    run_prepared,
    simulate_case,
    with_slos,
)
from alpa_serve.experiments.cases import (
    DEFAULT_MEM_BUDGET,
    MODEL_SETS,
    Case,
    SyntheticWorkload,
    TraceWorkload,
    model_names,
    model_types,
)
from alpa_serve.experiments.suites import (
    SuiteEntry,
    SuiteOptions,
    UnknownSuiteError,
    build_suite,
    suite_names,
)
from alpa_serve.results import COLUMNS, TsvFormatError, append_row, read_rows

__all__ = [
    "Case", "DEFAULT_MEM_BUDGET", "MODEL_SETS", "SyntheticWorkload", "TraceWorkload",
    "model_names", "model_types",
    "CaseInputs", "CaseResult", "case_models", "inputs_key", "prepare_inputs", "run_case",
    "run_prepared", "simulate_case", "with_slos",
    "SuiteEntry", "SuiteOptions", "UnknownSuiteError", "build_suite",
    "suite_names",
    "COLUMNS", "TsvFormatError", "append_row", "read_rows",
]
