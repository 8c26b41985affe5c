"""The original artifact's ``profiling_result.pkl``: reading it without running it, writing ours
in its layout (DESIGN 3.5).

The original file is a pickle of a dict ``{model name -> ProfilingResult}`` whose classes live in
the original package's module ``alpa_serve.profiling``::

    ParallelConfig = namedtuple("ParallelConfig", ("dp", "op", "pp"))
    @dataclass LatencyMemData: latency: {batch size -> [stage s]}, act_mem: {batch size ->
                               [stage bytes]}, weight_mem: [stage bytes], metadata = None
    @dataclass ProfilingResult: model_name, para_dict: {ParallelConfig -> LatencyMemData},
                                preprocess_cpu: float, postprocess_cpu: float

That module name is also ours, so a plain ``pickle.load`` would resolve those names to whatever
our package defines (or fail). :class:`OriginalUnpickler` never imports anything: it maps exactly
these three global names to small record classes of this module and refuses every other global
(so the file cannot run code). Instances are rebuilt from the pickle's ``NEWOBJ`` + ``BUILD``
opcodes (protocols 2 to 5, what ``pickle.dump`` writes for a dataclass and a namedtuple); the
protocol 0/1 form (``copyreg._reconstructor``) is refused.

Conversion into our schema (DESIGN 3.1): every (model, configuration, batch size) keeps its
numbers exactly; ``metadata`` is dropped (not used by a simulator); ``preprocess_cpu`` and
``postprocess_cpu`` (seconds, not used by the simulator either) are recorded in the database's
free-form ``hardware`` description under ``original_cpu_seconds`` and written back from there.

Writing (:func:`to_original_bytes`) emits the same pickle by hand (protocol 2, opcodes
``GLOBAL``/``NEWOBJ``/``BUILD``), naming ``alpa_serve.profiling.ParallelConfig`` etc., so that
the original package loads it with a plain ``pickle.load``; the output is deterministic.
"""
from __future__ import annotations

import io
import logging
import math
import pickle
import struct
from pathlib import Path
from typing import Any, Mapping

from alpa_serve.profiling.database import (
    DatabaseFormatError,
    ParallelConfig,
    ProfilingDatabase,
)

logger = logging.getLogger(__name__)

#: Module of the original classes (the original package's ``alpa_serve/profiling.py``).
ORIGINAL_MODULE = "alpa_serve.profiling"
#: Key of the free-form ``hardware`` description that keeps the original CPU latencies.
CPU_SECONDS_KEY = "original_cpu_seconds"


# --------------------------------------------------------------------------------------------
# Record classes the three original names resolve to (never our own ParallelConfig)
# --------------------------------------------------------------------------------------------
class OriginalParallelConfig:
    """What ``alpa_serve.profiling.ParallelConfig`` unpickles to: the three integers only."""

    __slots__ = ("values",)
    values: tuple[Any, ...]

    def __new__(cls, *args: Any, **kwargs: Any) -> "OriginalParallelConfig":
        obj = object.__new__(cls)
        if kwargs:  # NEWOBJ_EX with keywords: dp=, op=, pp=
            names = ("dp", "op", "pp")
            merged = dict(zip(names, args))
            for key, value in kwargs.items():
                if key not in names or key in merged:
                    raise pickle.UnpicklingError(
                        f"ParallelConfig with unexpected arguments {args!r} {kwargs!r}")
                merged[key] = value
            args = tuple(merged.get(n) for n in names)
        obj.values = tuple(args)
        return obj

    def __setstate__(self, state: Any) -> None:
        if state:
            raise pickle.UnpicklingError(f"ParallelConfig carries unexpected state {state!r}")

    def __hash__(self) -> int:
        return hash(self.values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OriginalParallelConfig) and self.values == other.values

    def __repr__(self) -> str:
        return f"ParallelConfig{self.values!r}"


class _OriginalRecord:
    """A dataclass instance of the original package: its field dict, checked against FIELDS."""

    NAME = ""
    FIELDS: tuple[str, ...] = ()
    OPTIONAL: tuple[str, ...] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> "_OriginalRecord":
        if args or kwargs:
            raise pickle.UnpicklingError(f"{cls.NAME} built with arguments {args!r}; expected "
                                         "the dataclass form (no arguments, then its fields)")
        obj = object.__new__(cls)
        obj.__dict__["fields"] = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
            state = state[0]  # (dict, slots) form with no slots
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.NAME} state is a {type(state).__name__}, "
                                         "expected the dataclass's field dict")
        unknown = sorted(str(k) for k in state if k not in self.FIELDS)
        if unknown:
            raise pickle.UnpicklingError(f"{self.NAME} has unknown field(s) {unknown}; "
                                         f"expected {', '.join(self.FIELDS)}")
        missing = [k for k in self.FIELDS if k not in state and k not in self.OPTIONAL]
        if missing:
            raise pickle.UnpicklingError(f"{self.NAME} lacks field(s) {missing}")
        self.__dict__["fields"] = dict(state)

    def get(self, name: str, default: Any = None) -> Any:
        """Field ``name`` (``default`` if the pickle did not have it)."""
        return self.__dict__["fields"].get(name, default)


class OriginalLatencyMemData(_OriginalRecord):
    """What ``alpa_serve.profiling.LatencyMemData`` unpickles to."""

    NAME = "LatencyMemData"
    FIELDS = ("latency", "act_mem", "weight_mem", "metadata")
    OPTIONAL = ("metadata",)  # older versions of the class had no metadata field


class OriginalProfilingResult(_OriginalRecord):
    """What ``alpa_serve.profiling.ProfilingResult`` unpickles to."""

    NAME = "ProfilingResult"
    FIELDS = ("model_name", "para_dict", "preprocess_cpu", "postprocess_cpu")
    OPTIONAL = ("preprocess_cpu", "postprocess_cpu")


#: The only globals an original profile may reference, and what each resolves to.
ORIGINAL_CLASSES: dict[str, type] = {
    "ParallelConfig": OriginalParallelConfig,
    "LatencyMemData": OriginalLatencyMemData,
    "ProfilingResult": OriginalProfilingResult,
}


class OriginalUnpickler(pickle.Unpickler):
    """Resolves exactly ``alpa_serve.profiling.{ParallelConfig, LatencyMemData,
    ProfilingResult}`` (to the record classes above) and refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if module == ORIGINAL_MODULE and name in ORIGINAL_CLASSES:
            return ORIGINAL_CLASSES[name]
        raise pickle.UnpicklingError(
            f"the pickle references {module}.{name}; an original-artifact profile may "
            f"reference only {', '.join(f'{ORIGINAL_MODULE}.{n}' for n in ORIGINAL_CLASSES)} "
            "(protocol 2 or later); nothing else is loaded")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def load_original_bytes(data: bytes, source: Any = "<bytes>") -> ProfilingDatabase:
    """The database held by an original-layout pickle (``source`` names it in errors).

    Raises DatabaseFormatError for a pickle that references anything but the three original
    classes, or whose content does not follow the original layout or our schema's rules
    (stage counts = pp, positive latencies, the same batch sizes in latency and act_mem).
    """
    try:
        obj = OriginalUnpickler(io.BytesIO(data)).load()
    except Exception as exc:  # any unpickling failure is a malformed file
        raise DatabaseFormatError(source, f"cannot read as the original artifact's profile: "
                                  f"{exc}") from exc
    return original_to_database(obj, source)


def _plain_number_list(value: Any, what: str, bad) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise bad(f"{what} is a {type(value).__name__}, expected a list of numbers")
    return list(value)


def original_to_database(obj: Any, source: Any = "<original>") -> ProfilingDatabase:
    """Convert the unpickled original dict ``{name -> OriginalProfilingResult}`` (see
    :class:`OriginalUnpickler`) into a database (DESIGN 3.1)."""
    def bad(problem: str) -> DatabaseFormatError:
        return DatabaseFormatError(source, problem)

    if not isinstance(obj, dict):
        raise bad(f"top level is a {type(obj).__name__}, expected the original dict "
                  "{model name -> ProfilingResult}")
    models: dict[str, Any] = {}
    cpu: dict[str, dict[str, float]] = {}
    dropped_metadata = 0
    for name, result in obj.items():
        if not isinstance(name, str):
            raise bad(f"model name {name!r} is not a string")
        if not isinstance(result, OriginalProfilingResult):
            raise bad(f"model {name!r}: value is a {type(result).__name__}, expected a "
                      "ProfilingResult")
        if result.get("model_name", name) != name:
            logger.warning("%s: ProfilingResult %r is stored under the key %r; using the key "
                           "(what the original experiments look up)", source,
                           result.get("model_name"), name)
        para = result.get("para_dict")
        if not isinstance(para, dict):
            raise bad(f"model {name!r}: para_dict is a {type(para).__name__}, expected a dict")
        configs = []
        for cfg, data in para.items():
            values = cfg.values if isinstance(cfg, OriginalParallelConfig) else cfg
            if not (isinstance(values, tuple) and len(values) == 3):
                raise bad(f"model {name!r}: para_dict key {cfg!r} is not a ParallelConfig "
                          "(dp, op, pp)")
            where = f"model {name!r} config {tuple(values)!r}"
            if not isinstance(data, OriginalLatencyMemData):
                raise bad(f"{where}: value is a {type(data).__name__}, expected LatencyMemData")
            if data.get("metadata") is not None:
                dropped_metadata += 1
            tables = {}
            for table in ("latency", "act_mem"):
                value = data.get(table)
                if not isinstance(value, dict):
                    raise bad(f"{where}: {table} is a {type(value).__name__}, expected a dict "
                              "batch size -> stage list")
                rows = {}
                for b, stages in value.items():
                    if not isinstance(b, int) or isinstance(b, bool):
                        raise bad(f"{where}: {table} has a non-integer batch size {b!r}")
                    rows[str(b)] = _plain_number_list(stages, f"{where}: {table}[{b}]",
                                                      bad)
                tables[table] = rows
            configs.append({"dp": values[0], "op": values[1], "pp": values[2],
                            "latency": tables["latency"], "act_mem": tables["act_mem"],
                            "weight_mem": _plain_number_list(data.get("weight_mem"),
                                                             f"{where}: weight_mem", bad)})
        models[name] = {"configs": configs}
        pre, post = result.get("preprocess_cpu", 0.0), result.get("postprocess_cpu", 0.0)
        for label, value in (("preprocess_cpu", pre), ("postprocess_cpu", post)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not math.isfinite(value):
                raise bad(f"model {name!r}: {label} is {value!r}, expected seconds")
        cpu[name] = {"preprocess_cpu": float(pre), "postprocess_cpu": float(post)}
    if dropped_metadata:
        logger.info("%s: dropped the metadata of %d configuration(s) (not used by the "
                    "simulator)", source, dropped_metadata)
    hardware = {"description": "converted from the original artifact's profiling_result.pkl",
                "source": Path(str(source)).name, CPU_SECONDS_KEY: cpu}
    doc = {"format": "alpa_serve.profiling/v1", "hardware": hardware, "models": models}
    return ProfilingDatabase.from_dict(doc, source=source)


def load_original(path: str | Path) -> ProfilingDatabase:
    """Read an original-layout ``profiling_result.pkl`` (the file is only read)."""
    path = Path(path)
    return load_original_bytes(path.read_bytes(), source=path)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
class _Emitter:
    """Writes pickle protocol 2 opcodes for plain values and the three original classes."""

    def __init__(self) -> None:
        self.out = io.BytesIO()

    def op(self, code: bytes, payload: bytes = b"") -> None:
        self.out.write(code + payload)

    def value(self, v: Any) -> None:
        if v is None:
            self.op(pickle.NONE)
        elif isinstance(v, bool):
            self.op(pickle.NEWTRUE if v else pickle.NEWFALSE)
        elif isinstance(v, int):
            if 0 <= v < 256:
                self.op(pickle.BININT1, struct.pack("<B", v))
            elif 0 <= v < 65536:
                self.op(pickle.BININT2, struct.pack("<H", v))
            elif -(2 ** 31) <= v < 2 ** 31:
                self.op(pickle.BININT, struct.pack("<i", v))
            else:
                raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
                self.op(pickle.LONG1, struct.pack("<B", len(raw)) + raw)
        elif isinstance(v, float):
            self.op(pickle.BINFLOAT, struct.pack(">d", v))
        elif isinstance(v, str):
            raw = v.encode("utf-8", "surrogatepass")
            self.op(pickle.BINUNICODE, struct.pack("<I", len(raw)) + raw)
        elif isinstance(v, list):
            self.op(pickle.EMPTY_LIST)
            if v:
                self.op(pickle.MARK)
                for item in v:
                    self.value(item)
                self.op(pickle.APPENDS)
        elif isinstance(v, dict):
            self.op(pickle.EMPTY_DICT)
            if v:
                self.op(pickle.MARK)
                for key, item in v.items():
                    self.value(key)
                    self.value(item)
                self.op(pickle.SETITEMS)
        elif isinstance(v, ParallelConfig):
            self.glob("ParallelConfig")
            for x in v:
                self.value(int(x))
            self.op(pickle.TUPLE3)
            self.op(pickle.NEWOBJ)
        elif isinstance(v, _Instance):
            self.glob(v.cls)
            self.op(pickle.EMPTY_TUPLE)
            self.op(pickle.NEWOBJ)
            self.value(v.fields)
            self.op(pickle.BUILD)
        else:
            raise TypeError(f"cannot write {type(v).__name__} in the original layout")

    def glob(self, name: str) -> None:
        self.op(pickle.GLOBAL, f"{ORIGINAL_MODULE}\n{name}\n".encode("ascii"))


class _Instance:
    """A dataclass instance of the original package, to be written: class name and fields."""

    def __init__(self, cls: str, fields: dict[str, Any]):
        self.cls = cls
        self.fields = fields


def to_original_bytes(db: ProfilingDatabase) -> bytes:
    """``db`` as the original artifact's ``profiling_result.pkl`` (deterministic bytes).

    Each model becomes ``ProfilingResult(model_name, para_dict, preprocess_cpu,
    postprocess_cpu)`` with ``para_dict`` = ``{ParallelConfig(dp, op, pp): LatencyMemData(
    latency, act_mem, weight_mem, metadata=None)}`` (batch sizes as int keys, stage lists of
    floats); the CPU latencies come from ``hardware["original_cpu_seconds"]`` when present
    (a database read from an original file), else 0.0 as in the original conversion.
    """
    cpu = db.hardware.get(CPU_SECONDS_KEY, {})
    cpu = cpu if isinstance(cpu, Mapping) else {}
    top: dict[str, Any] = {}
    for prof in db:
        para: dict[Any, Any] = {}
        for cfg in prof.configs():
            cp = prof.profile(cfg)
            para[cfg] = _Instance("LatencyMemData", {
                "latency": {int(b): [float(x) for x in cp.latency[b]] for b in cp.batch_sizes},
                "act_mem": {int(b): [float(x) for x in cp.act_mem[b]] for b in cp.batch_sizes},
                "weight_mem": [float(x) for x in cp.weight_mem],
                "metadata": None})
        times = cpu.get(prof.name, {}) if isinstance(cpu.get(prof.name), Mapping) else {}
        top[prof.name] = _Instance("ProfilingResult", {
            "model_name": prof.name, "para_dict": para,
            "preprocess_cpu": float(times.get("preprocess_cpu", 0.0)),
            "postprocess_cpu": float(times.get("postprocess_cpu", 0.0))})
    em = _Emitter()
    em.op(pickle.PROTO, b"\x02")
    em.value(top)
    em.op(pickle.STOP)
    return em.out.getvalue()


def save_original(db: ProfilingDatabase, path: str | Path) -> None:
    """Write ``db`` in the original layout to ``path`` (see :func:`to_original_bytes`)."""
    path = Path(path)
    data = to_original_bytes(db)
    path.write_bytes(data)
    logger.info("wrote %s in the original artifact's layout (%d models, %d bytes)", path,
                len(db), len(data))
