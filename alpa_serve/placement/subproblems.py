"""Solved search sub-problems, kept by content so that cases can share them (DESIGN 6).

mp-search-sep solves mp-search on every (cluster of models, number of devices) pair its device
splits need. Such a sub-problem's result depends only on the cluster's profiles, its training
workload (with the other clusters' requests as failures), the memory budget, the number of
devices, the tie-breaking kind and the search code itself. Cases that share all of these (the
cases of a device-count sweep: same workload, different totals) can reuse each other's
sub-problems: a 48-device case needs the clusters on 1..47 devices, which a 64-device case has
already solved. The key below covers every one of these inputs, so a stored result is exactly
what solving it again would return.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from alpa_serve.placement_types import ModelPlacement, model_placement_from_dict
from alpa_serve.workload.workload import SortKind

logger = logging.getLogger(__name__)

#: Modules whose source code the search results depend on: a change in any of them gives new
#: keys, so results stored by older code are never reused.
_SEARCH_SOURCES = ("placement/greedy.py", "placement/search_case.py",
                   "placement/model_parallel.py", "placement_types.py",
                   "simulator/kernels.py", "simulator/tables.py", "simulator/stats.py")


@lru_cache(maxsize=1)
def search_code_digest() -> str:
    """Hash of the source files of the search (see ``_SEARCH_SOURCES``)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for rel in _SEARCH_SOURCES:
        h.update(rel.encode())
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:16]


def workload_digest(workload) -> str:
    """Hash of a training workload's arrays (arrivals in seconds, model ids, SLOs in seconds);
    model names do not change a search result and are left out."""
    h = hashlib.blake2b(digest_size=20)
    for arr, dtype in ((workload.arrivals, np.float64), (workload.model_ids, np.int32),
                       (workload.slos, np.float64)):
        h.update(np.ascontiguousarray(arr, dtype=dtype).tobytes())
    return h.hexdigest()


def subproblem_key(profiles: Sequence, workload_hash: str, mem_budget: float,
                   num_devices: int, argsort_kind: SortKind) -> str:
    """Content key of one mp-search sub-problem: the models' profiles (names and numbers),
    the training workload (:func:`workload_digest`), the budget (bytes), the number of
    devices, the tie-breaking kind and the search code."""
    meta = {"code": search_code_digest(), "kind": argsort_kind,
            "budget": float(mem_budget).hex(), "devices": int(num_devices),
            "profiles": [p.fingerprint() for p in profiles], "workload": workload_hash}
    return hashlib.blake2b(json.dumps(meta, sort_keys=True).encode(),
                           digest_size=20).hexdigest()


class SubproblemStore(ABC):
    """Where solved sub-problems are kept: key -> (placement, search score)."""

    @abstractmethod
    def get(self, key: str) -> Optional[tuple[ModelPlacement, float]]:
        """The stored result of ``key``, or None."""

    @abstractmethod
    def put(self, key: str, placement: ModelPlacement, score: float) -> None:
        """Store the result of ``key``."""


class MemoryStore(SubproblemStore):
    """In this process only."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[ModelPlacement, float]] = {}

    def get(self, key: str) -> Optional[tuple[ModelPlacement, float]]:
        return self._data.get(key)

    def put(self, key: str, placement: ModelPlacement, score: float) -> None:
        self._data[key] = (placement, float(score))


class DirectoryStore(SubproblemStore):
    """One small JSON file per key in a folder (shared by the processes of one machine, and by
    a cluster's nodes when the folder is on a shared file system). Writes are atomic; an
    unreadable file counts as missing."""

    def __init__(self, path: os.PathLike | str) -> None:
        self.path = Path(path)

    def _file(self, key: str) -> Path:
        return self.path / f"{key}.json"

    def get(self, key: str) -> Optional[tuple[ModelPlacement, float]]:
        try:
            doc = json.loads(self._file(key).read_text())
            return model_placement_from_dict(doc["placement"]), float.fromhex(doc["score"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning("ignoring unreadable stored sub-problem %s (%s)", self._file(key), e)
            return None

    def put(self, key: str, placement: ModelPlacement, score: float) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        doc = {"placement": placement.to_dict(), "score": float(score).hex()}
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, self._file(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


__all__ = ["DirectoryStore", "MemoryStore", "SubproblemStore", "search_code_digest",
           "subproblem_key", "workload_digest"]
