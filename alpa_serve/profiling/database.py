"""The profiling database: per-stage latency and memory of every model and parallel configuration.

Units everywhere: seconds for latencies, bytes for memory.

Schema (DESIGN 3.1). For each model and each ``ParallelConfig(dp, op, pp)`` the database holds,
per batch size ``b``:

* ``latency[b]``  - pp per-stage latencies (seconds);
* ``act_mem[b]``  - pp per-stage activation sizes (bytes);
* ``weight_mem``  - pp per-stage weight sizes (bytes per device of that stage, already / op).

Two on-disk forms carry the same nested structure of plain built-in types:

* ``.pkl`` - a pickle of dicts, lists, floats, ints and strings only, so it unpickles without this
  package (we also *load* it with an unpickler that refuses every class, which enforces this);
* ``.json`` - the same document as JSON.

The document::

    {"format": "alpa_serve.profiling/v1",
     "hardware": {...free-form...},
     "models": {"bert-1.3b": {"configs": [
         {"dp": 1, "op": 1, "pp": 2,
          "latency": {"1": [0.079, 0.079], ...},
          "act_mem": {"1": [...], ...},
          "weight_mem": [1.31e9, 1.31e9]}, ...]}, ...}}
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Optional

logger = logging.getLogger(__name__)

FORMAT_TAG = "alpa_serve.profiling/v1"
# Fixed so that regenerating the committed pkl gives identical bytes on every Python >= 3.8.
PICKLE_PROTOCOL = 4
# Name of the committed database inside the package (alpa_serve/data/).
DEFAULT_DB_NAME = "profiling_result.pkl"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
class UnknownModelError(KeyError):
    """A model name that the database does not contain."""

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        self.known = list(known)
        super().__init__(name)

    def __str__(self) -> str:  # KeyError would otherwise print repr(name) only
        return (f"unknown model {self.name!r}; the profiling database knows: "
                f"{', '.join(self.known) or '(none)'}")


class ConfigNotProfiledError(KeyError):
    """A (model, parallel config, batch size) combination absent from the database."""

    def __init__(self, model: str, config: Any, available: Iterable[Any], what: str = "config"):
        self.model = model
        self.config = config
        self.available = list(available)
        self.what = what
        super().__init__(model, config)

    def __str__(self) -> str:
        avail = ", ".join(_fmt_cfg(c) for c in self.available) or "(none)"
        return (f"model {self.model!r} has no profiled {self.what} {_fmt_cfg(self.config)}; "
                f"available: {avail}. Choose one of these or regenerate the database "
                f"(python -m alpa_serve.profiling.generate).")


class DatabaseFormatError(ValueError):
    """A profiling database file that cannot be read or does not follow the schema."""

    def __init__(self, path: Any, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _fmt_cfg(cfg: Any) -> str:
    if isinstance(cfg, tuple) and len(cfg) == 3:
        return f"(dp={cfg[0]}, op={cfg[1]}, pp={cfg[2]})"
    return repr(cfg)


# --------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------
class ParallelConfig(NamedTuple):
    """A parallel configuration of one device group; the group has ``op * pp`` devices.

    dp is always 1 (data parallelism is expressed as separate groups); op is the intra-operator
    (tensor) parallel degree, pp the number of pipeline stages.
    """

    dp: int
    op: int
    pp: int

    @property
    def num_devices(self) -> int:
        """Devices in a group with this configuration (dp * op * pp)."""
        return self.dp * self.op * self.pp

    @classmethod
    def coerce(cls, value: Any) -> "ParallelConfig":
        """``value`` as a ParallelConfig: a ParallelConfig itself, or any sequence of three
        integers ``[dp, op, pp]`` (e.g. a list read from JSON)."""
        if isinstance(value, ParallelConfig):
            return value
        items = tuple(int(v) for v in value)
        if len(items) != 3:
            raise ValueError(f"a parallel config needs 3 integers [dp, op, pp], got {value!r}")
        return cls(*items)


@dataclass(frozen=True)
class ConfigProfile:
    """Profile of one model under one parallel configuration.

    latency:    batch size -> per-stage latency (seconds), one entry per pipeline stage.
    act_mem:    batch size -> per-stage activation memory (bytes).
    weight_mem: per-stage weight memory (bytes per device of that stage, already divided by op).
    """

    latency: dict[int, tuple[float, ...]]
    act_mem: dict[int, tuple[float, ...]]
    weight_mem: tuple[float, ...]

    @property
    def batch_sizes(self) -> list[int]:
        """Profiled batch sizes, ascending."""
        return sorted(self.latency)


@dataclass(frozen=True, init=False, eq=True)
class ModelProfile:
    """All profiled configurations of one model.

    Constructed as ``ModelProfile(name, configs)`` with ``configs`` a dict
    ``ParallelConfig -> ConfigProfile``; ``configs()`` then lists the configurations (sorted).
    """

    name: str
    _table: dict[ParallelConfig, ConfigProfile] = field(repr=False)

    def __init__(self, name: str, configs: Mapping[Any, ConfigProfile]):
        table = {ParallelConfig.coerce(k): v for k, v in configs.items()}
        # Sorted storage: iteration order is then independent of construction order.
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_table", dict(sorted(table.items())))

    def __hash__(self) -> int:
        return hash((self.name, tuple(self._table)))

    # -- queries -------------------------------------------------------------------------
    def configs(self) -> list[ParallelConfig]:
        """All profiled parallel configurations, sorted by (dp, op, pp)."""
        return list(self._table)

    def has_config(self, cfg: Any) -> bool:
        """True if ``cfg`` (a ParallelConfig or (dp, op, pp) tuple) is profiled."""
        try:
            return ParallelConfig.coerce(cfg) in self._table
        except (TypeError, ValueError):
            return False

    def profile(self, cfg: Any) -> ConfigProfile:
        """The ConfigProfile of ``cfg``; raises ConfigNotProfiledError if absent."""
        key = ParallelConfig.coerce(cfg)
        try:
            return self._table[key]
        except KeyError:
            raise ConfigNotProfiledError(self.name, key, self._table) from None

    def _per_batch(self, table: str, cfg: Any, batch_size: int) -> list[float]:
        """Per-stage list of the per-batch-size ``table`` ('latency' or 'act_mem') of ``cfg``."""
        prof = self.profile(cfg)
        try:
            return list(getattr(prof, table)[batch_size])
        except KeyError:
            where = _fmt_cfg(ParallelConfig.coerce(cfg))
            raise ConfigNotProfiledError(self.name, batch_size, prof.batch_sizes,
                                         what=f"batch size under {where}:") from None

    def latency(self, cfg: Any, batch_size: int = 1) -> list[float]:
        """Per-stage latency in seconds of one batch of ``batch_size`` requests under ``cfg``."""
        return self._per_batch("latency", cfg, batch_size)

    def act_mem(self, cfg: Any, batch_size: int = 1) -> list[float]:
        """Per-stage activation memory in bytes for a batch of ``batch_size`` under ``cfg``."""
        return self._per_batch("act_mem", cfg, batch_size)

    def weight_mem(self, cfg: Any) -> list[float]:
        """Per-stage weight memory in bytes per device (already divided by op) under ``cfg``."""
        return list(self.profile(cfg).weight_mem)

    def max_stage_weight(self, cfg: Any) -> float:
        """Largest per-device stage weight in bytes under ``cfg``; ``inf`` if ``cfg`` is missing.

        ``inf`` lets placement code treat an unprofiled configuration as "never fits".
        """
        key = ParallelConfig.coerce(cfg)
        prof = self._table.get(key)
        if prof is None:
            return math.inf
        return float(max(prof.weight_mem))

    def to_dict(self) -> dict[str, Any]:
        """This model's entry of the on-disk document: ``{"configs": [...]}`` (plain types,
        deterministic order)."""
        cfg_list = []
        for cfg in self.configs():
            cp = self.profile(cfg)
            cfg_list.append({
                "dp": int(cfg.dp), "op": int(cfg.op), "pp": int(cfg.pp),
                "latency": {str(b): [float(x) for x in cp.latency[b]]
                            for b in sorted(cp.latency)},
                "act_mem": {str(b): [float(x) for x in cp.act_mem[b]]
                            for b in sorted(cp.act_mem)},
                "weight_mem": [float(x) for x in cp.weight_mem],
            })
        return {"configs": cfg_list}

    def fingerprint(self) -> str:
        """Short stable hash (12 hex chars of sha256) of this model's name and numbers: what a
        result that uses only this model type depends on in the database."""
        canon = json.dumps({self.name: self.to_dict()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:12]

    @property
    def single_latency(self) -> float:
        """Sum of the (dp=1, op=1, pp=1) stage latencies at batch size 1, in seconds.

        This is the base of the model's SLO (SLO = slo_scale * single_latency). A model too
        large for one device (bert-103.5b) has no (1, 1, 1) entry; its base is then the stage
        sum of the op=1 pipeline with the fewest stages (bert-103.5b: (1, 1, 16), 4.6 s, the
        published whole-model latency). ConfigNotProfiledError if neither exists.
        """
        single = ParallelConfig(1, 1, 1)
        if single in self._table:
            return float(sum(self.latency(single, 1)))
        pipelines = [c for c in self._table if c.dp == 1 and c.op == 1]
        if not pipelines:
            raise ConfigNotProfiledError(self.name, single, self._table)
        return float(sum(self.latency(min(pipelines, key=lambda c: c.pp), 1)))


# --------------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------------
class ClassReferenceError(pickle.UnpicklingError):
    """A pickle that references a global (a class or function) where only plain built-in types
    are allowed; ``module`` and ``name`` say which."""

    def __init__(self, module: str, name: str):
        self.module = module
        self.name = name
        super().__init__(f"the pickle references {module}.{name}; only plain built-in types "
                         "are allowed")


class _PlainUnpickler(pickle.Unpickler):
    """Refuses every class: the committed pkl must hold plain built-in types only."""

    def find_class(self, module: str, name: str) -> Any:
        raise ClassReferenceError(module, name)


class ProfilingDatabase:
    """A set of ModelProfiles plus a free-form description of the hardware they model."""

    def __init__(self, profiles: Mapping[str, ModelProfile] | Iterable[ModelProfile],
                 hardware: Mapping[str, Any] | None = None):
        if isinstance(profiles, Mapping):
            items = list(profiles.values())
        else:
            items = list(profiles)
        self._profiles: dict[str, ModelProfile] = {}
        for prof in items:
            if prof.name in self._profiles:
                raise ValueError(f"duplicate model {prof.name!r} in profiling database")
            self._profiles[prof.name] = prof
        self.hardware: dict[str, Any] = dict(hardware or {})

    # -- access ----------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        """Model names in database order."""
        return list(self._profiles)

    def get(self, name: str) -> ModelProfile:
        """The ModelProfile of ``name``; raises UnknownModelError (listing known names)."""
        try:
            return self._profiles[name]
        except KeyError:
            raise UnknownModelError(name, self._profiles) from None

    def __getitem__(self, name: str) -> ModelProfile:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def __len__(self) -> int:
        return len(self._profiles)

    def __iter__(self):
        return iter(self._profiles.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProfilingDatabase):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ProfilingDatabase(models={self.model_names()}, fingerprint={self.fingerprint()})"

    # -- plain-document conversion -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The on-disk document (plain dicts/lists/floats/ints/strings, deterministic order)."""
        models = {name: prof.to_dict() for name, prof in self._profiles.items()}
        return {"format": FORMAT_TAG, "hardware": _plain(self.hardware), "models": models}

    @classmethod
    def from_dict(cls, doc: Any, source: Any = "<dict>") -> "ProfilingDatabase":
        """Build a database from the plain document; DatabaseFormatError names ``source``."""
        def bad(problem: str) -> DatabaseFormatError:
            return DatabaseFormatError(source, problem)

        if not isinstance(doc, dict):
            raise bad(f"top level must be a dict, got {type(doc).__name__}")
        if doc.get("format") != FORMAT_TAG:
            raise bad(f"format tag is {doc.get('format')!r}, expected {FORMAT_TAG!r}")
        models = doc.get("models")
        if not isinstance(models, dict):
            raise bad("missing or non-dict 'models'")
        if not models:
            raise bad("'models' is empty (the database has no models)")
        hardware = doc.get("hardware", {})
        if not isinstance(hardware, dict):
            raise bad("'hardware' must be a dict")
        profiles = []
        for name, mdoc in models.items():
            if not isinstance(name, str):
                raise bad(f"model name {name!r} is not a string")
            if not isinstance(mdoc, dict) or not isinstance(mdoc.get("configs"), list):
                raise bad(f"model {name!r}: missing or non-list 'configs'")
            if not mdoc["configs"]:
                raise bad(f"model {name!r} has no configurations ('configs' is empty)")
            table: dict[ParallelConfig, ConfigProfile] = {}
            for i, cdoc in enumerate(mdoc["configs"]):
                where = f"model {name!r} config #{i}"
                cfg, cp = _parse_config(cdoc, lambda p, w=where: bad(f"{w}: {p}"))
                if cfg in table:
                    raise bad(f"{where}: duplicate configuration {_fmt_cfg(cfg)}")
                table[cfg] = cp
            profiles.append(ModelProfile(name, table))
        return cls(profiles, hardware)

    # -- files -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "ProfilingDatabase":
        """Load a database; DatabaseFormatError (naming the file, and the line for rows) if
        malformed. The file is only read.

        Accepted, by suffix (DESIGN 3.1, 3.5):

        * ``.pkl``: our plain pickle, or the original artifact's class-based
          ``profiling_result.pkl`` (detected by its class references and read by a restricted
          unpickler that runs nothing; ``original_format``);
        * ``.json``: our document as JSON;
        * ``.tsv``: raw benchmark rows (``benchmark_rows.load_database``).
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".pkl", ".json", ".tsv"):
            raise DatabaseFormatError(path, f"unknown suffix {path.suffix!r}; use .pkl (ours or "
                                      "the original artifact's), .json or .tsv (raw rows)")
        if suffix == ".tsv":
            from alpa_serve.profiling.benchmark_rows import BenchmarkRowError, load_database

            try:
                return load_database(path)
            except BenchmarkRowError as exc:
                where = f"{exc.path}:{exc.line}" if exc.line is not None else exc.path
                raise DatabaseFormatError(where, exc.problem) from exc
            except ValueError as exc:  # e.g. a row file without rows
                raise DatabaseFormatError(path, str(exc)) from exc
        data = path.read_bytes()  # FileNotFoundError propagates unchanged: it is not a format issue
        if suffix == ".pkl":
            try:
                doc = _PlainUnpickler(io.BytesIO(data)).load()
            except ClassReferenceError as exc:
                from alpa_serve.profiling.original_format import (
                    ORIGINAL_MODULE,
                    load_original_bytes,
                )

                if exc.module in ("copy_reg", "copyreg") and exc.name == "_reconstructor":
                    raise DatabaseFormatError(
                        path, "cannot unpickle: it uses copyreg._reconstructor (classes pickled "
                        "with protocol 0 or 1); an original-artifact profile is read from "
                        "protocol 2 or later: load it with the original package and pickle.dump "
                        "it again with protocol=2 or higher") from exc
                if exc.module != ORIGINAL_MODULE:
                    raise DatabaseFormatError(path, f"cannot unpickle: {exc}") from exc
                return load_original_bytes(data, source=path)
            except Exception as exc:  # any unpickling failure is a malformed file
                raise DatabaseFormatError(path, f"cannot unpickle: {exc}") from exc
        else:
            try:
                doc = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DatabaseFormatError(path, f"invalid JSON: {exc}") from exc
        db = cls.from_dict(doc, source=path)
        logger.debug("loaded profiling database %s (%d models, fingerprint %s)",
                     path, len(db), db.fingerprint())
        return db

    def to_bytes(self, suffix: str) -> bytes:
        """Serialized bytes for ``suffix`` ('.pkl' or '.json'); deterministic."""
        doc = self.to_dict()
        if suffix == ".pkl":
            return pickle.dumps(doc, protocol=PICKLE_PROTOCOL)
        if suffix == ".json":
            return (json.dumps(doc, indent=1) + "\n").encode("utf-8")
        raise ValueError(f"unknown database suffix {suffix!r}; use .pkl or .json")

    def save(self, path: str | Path) -> None:
        """Write the database; the format follows the suffix (.pkl or .json)."""
        path = Path(path)
        data = self.to_bytes(path.suffix.lower())
        path.write_bytes(data)
        logger.info("wrote profiling database %s (%d bytes, fingerprint %s)",
                    path, len(data), self.fingerprint())

    @classmethod
    def default_path(cls) -> Path:
        """Path of the committed V100 reconstruction inside the package (alpa_serve/data/)."""
        return Path(__file__).resolve().parent.parent / "data" / DEFAULT_DB_NAME

    @classmethod
    def default(cls) -> "ProfilingDatabase":
        """Load the committed V100 reconstruction (alpa_serve/data/profiling_result.pkl)."""
        path = cls.default_path()
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing; regenerate it with: python -m alpa_serve.profiling.generate")
        return cls.load(path)

    def fingerprint(self, models: Optional[Iterable[str]] = None) -> str:
        """Short stable hash (12 hex chars of sha256) of the models' numbers.

        Computed over the canonical JSON of the ``models`` section only, so that editing the
        free-form hardware description does not change it; any number change does.
        ``models``: hash only these models' entries (what a result that uses just these model
        types depends on; a model added to or changed in the database elsewhere leaves it
        unchanged); None: every model.
        """
        names = self.model_names() if models is None else sorted(set(models))
        entries = {name: self.get(name).to_dict() for name in names}
        canon = json.dumps(entries, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:12]


# --------------------------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------------------------
def _plain(obj: Any) -> Any:
    """Copy of ``obj`` made of plain built-in types (tuples become lists)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    return str(obj)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _parse_stage_list(value: Any, pp: int, what: str, bad) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise bad(f"{what} must be a list, got {type(value).__name__}")
    if len(value) != pp:
        raise bad(f"{what} has {len(value)} stages, expected pp={pp}")
    out = []
    for x in value:
        if not _is_number(x) or not math.isfinite(x):
            raise bad(f"{what} contains a non-number or non-finite value {x!r}")
        if x < 0:
            raise bad(f"{what} contains a negative value {x!r}")
        out.append(float(x))
    return tuple(out)


def _parse_batch_table(value: Any, pp: int, what: str, bad) -> dict[int, tuple[float, ...]]:
    if not isinstance(value, dict) or not value:
        raise bad(f"{what} must be a non-empty dict batch size -> list")
    table = {}
    for key, stages in value.items():
        try:
            b = int(key)
        except (TypeError, ValueError):
            raise bad(f"{what} has a non-integer batch size key {key!r}") from None
        if b < 1 or str(b) != str(key).strip():
            raise bad(f"{what} has an invalid batch size key {key!r}")
        table[b] = _parse_stage_list(stages, pp, f"{what}[{b}]", bad)
    return dict(sorted(table.items()))


def _parse_config(cdoc: Any, bad) -> tuple[ParallelConfig, ConfigProfile]:
    if not isinstance(cdoc, dict):
        raise bad("a configuration entry must be a dict")
    for key in ("dp", "op", "pp", "latency", "act_mem", "weight_mem"):
        if key not in cdoc:
            raise bad(f"missing key {key!r}")
    dims = []
    for key in ("dp", "op", "pp"):
        v = cdoc[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise bad(f"{key} must be a positive int, got {v!r}")
        dims.append(v)
    cfg = ParallelConfig(*dims)
    latency = _parse_batch_table(cdoc["latency"], cfg.pp, "latency", bad)
    for b, stages in latency.items():
        # A stage that takes no time serves unbounded load: a damaged or placeholder profile.
        if min(stages) <= 0:
            raise bad(f"latency[{b}] {list(stages)} has a zero stage latency; latencies are "
                      f"seconds and must be > 0")
    act_mem = _parse_batch_table(cdoc["act_mem"], cfg.pp, "act_mem", bad)
    if set(latency) != set(act_mem):
        raise bad(f"latency batch sizes {sorted(latency)} differ from act_mem's {sorted(act_mem)}")
    weight = _parse_stage_list(cdoc["weight_mem"], cfg.pp, "weight_mem", bad)
    return cfg, ConfigProfile(latency=latency, act_mem=act_mem, weight_mem=weight)
