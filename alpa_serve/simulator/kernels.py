"""Compiled inner loops of the serving simulator (DESIGN 5.1).

Every function here takes plain numpy arrays only, so the kernels can be tested without the
profiling, workload or placement packages. Times are seconds (float64 clocks, float32 stored
stage latencies and SLOs, exactly as the published simulator stores them).

Placement encoding for one segment (one ``ModelPlacement``), built by :func:`encode_replicas`
from the groups ``tables.py`` passes:

* ``model_ptr`` (int32[M+1]): CSR row pointers; model m's replicas are entries
  ``model_ptr[m] .. model_ptr[m+1]-1``, in increasing group index (the tie-break order).
* per replica entry j (all int32[R]):
  ``rep_group[j]`` the group index, ``rep_free_off[j]`` the offset of the group's stage 0 in the
  segment's flat ``free`` array, ``rep_nstages[j]`` the group's number of pipeline stages (pp),
  ``rep_lat_off[j]`` the offset of the model's first stage latency in ``stage_lat``
  (-1: the group's configuration is missing from the model's profile = infinite latency).
* ``stage_lat`` (float32[*]): stage latencies already multiplied by (1 + 0.009 * pp).
* ``total_stages``: length of the flat ``free`` array (sum of the groups' stage counts).

Counting rules (DESIGN 5.1): model id -1 fails and counts only in the overall denominator; a model
with no replica fails and counts in its model only; a request sent to a group counts in that
group whether it is served or rejected.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Fixed per-request overhead added after the last stage (seconds), as in the published simulator.
FIXED_OVERHEAD = 0.011


@njit(cache=True)
def segment_bounds(arrivals: np.ndarray, change_times: np.ndarray) -> np.ndarray:
    """Request index bounds of the Clockwork++ segments.

    ``change_times`` is ``start_times[1:]`` followed by ``inf`` (length S = number of placements).
    Walking the requests in order, a request whose arrival is strictly greater than the current
    change time opens the next segment; at most one advance happens per request (the published
    loop), so a request far past several change times only moves one segment on.

    Returns int64[S+1]: segment s holds requests ``bounds[s] .. bounds[s+1]-1`` (maybe none).
    """
    num_seg = change_times.shape[0]
    n = arrivals.shape[0]
    bounds = np.full(num_seg + 1, n, dtype=np.int64)
    bounds[0] = 0
    seg = 0
    for i in range(n):
        if seg < num_seg - 1 and arrivals[i] > change_times[seg]:
            seg += 1
            bounds[seg] = i
    return bounds


@njit(cache=True)
def _last_stage_offsets(rep_free_off, rep_nstages):
    """int64[R]: offset in ``free`` of each replica's group's LAST stage."""
    out = np.empty(rep_free_off.shape[0], dtype=np.int64)
    for j in range(rep_free_off.shape[0]):
        out[j] = rep_free_off[j] + rep_nstages[j] - 1
    return out


@njit(cache=True, inline="always")
def _choose_replica(m, model_ptr, rep_last, free):
    """Replica entry of model m whose group's LAST stage is free earliest (strict <, so ties keep
    the lower group index); -1 when m has no replica. ``rep_last``: see _last_stage_offsets."""
    lo = model_ptr[m]
    hi = model_ptr[m + 1]
    if hi <= lo:
        return -1
    # The first replica is taken even if its group is free only at +inf.
    best = lo
    best_free = free[rep_last[lo]]
    for j in range(lo + 1, hi):
        f = free[rep_last[j]]
        if f < best_free:
            best = j
            best_free = f
    return best


@njit(cache=True, inline="always")
def _run_pipeline(t, slo, off, ns, lat_off, stage_lat, free, buf):
    """Pipeline recurrence for one request arriving at t (float64 seconds) with SLO slo
    (float32). Commits the per-stage completion times into free[off:off+ns] when served.
    ``buf``: float64 scratch of at least ns values (the per-stage x before the decision).

    Returns the finish time (float64) and whether the request is good.
    """
    if lat_off < 0:
        # Configuration missing from the model's profile: infinite latency, always rejected.
        return t, False
    x = t
    for k in range(ns):
        fk = free[off + k]
        x = fk if fk > x else x  # max(x, free), written as a select (no branch)
        x += stage_lat[lat_off + k]  # float32 latency promoted to float64, as published
        buf[k] = x
    finish = x + FIXED_OVERHEAD
    if finish - t <= slo:
        for k in range(ns):
            free[off + k] = buf[k]
        return finish, True
    return t, False


@njit(cache=True)
def simulate_requests(arrivals, model_ids, slos, index, lo, hi,
                      model_ptr, rep_group, rep_free_off, rep_nstages, rep_lat_off,
                      stage_lat, total_stages,
                      finish, good, model_num, model_good, group_num, lat_sum0):
    """Simulate requests in arrival order on one placement, starting from idle devices.

    The requests are ``lo .. hi-1`` when ``index`` is None, else ``index[lo] .. index[hi-1]``
    (``index``: int64, strictly increasing, so still in arrival order). Walking a subset is
    exact when no skipped request could reach the simulated groups: a request of a model with
    no replica in the placement, or of model -1, only changes counters. The search uses it to
    simulate one connected component of the model-group graph (its models' requests).

    Per request (DESIGN 5.1): model -1 fails and counts only in the overall denominator; a model
    with no replica fails and counts in ``model_num`` only; otherwise the replica whose group's
    last stage is free earliest serves it (ties: lower group index), the request counts in
    ``group_num`` of that group, and it is good when (finish - arrival) <= SLO, in which case
    the group's stage completion times are committed.

    ``finish``/``good``: float64/bool per-request outputs (finish = arrival for a failed
    request), written at the request's own index; pass None for both to skip them (search).
    The counters ``model_num``/``model_good`` (int64[M]) and ``group_num`` (int64[>=G]) are
    ADDED to, so several segments can accumulate into them.

    Returns ``(num_good, latency_sum)``: the number of good requests walked and ``lat_sum0``
    plus the float64 sum of their latencies (finish - arrival) added in arrival order (passing
    the running sum in keeps the summation order identical whatever the segmentation).

    One loop body serves every mode; numba compiles a specialisation per None/array argument
    and prunes the dead branches. (A shared helper inlined into several kernels ran ~4x slower
    on some CPUs, see docs/performance.md.)
    """
    # Idle devices: -inf so that an idle stage never delays a request (arrivals may be < 0).
    free = np.full(total_stages, -np.inf)
    buf = np.empty(max(total_stages, 1))
    rep_last = _last_stage_offsets(rep_free_off, rep_nstages)
    num_good = 0
    lat_sum = lat_sum0
    for r in range(lo, hi):
        if index is None:
            i = r
        else:
            i = index[r]
        t = arrivals[i]
        m = model_ids[i]
        f = t
        ok = False
        if m >= 0:
            model_num[m] += 1
            j = _choose_replica(m, model_ptr, rep_last, free)
            if j >= 0:
                group_num[rep_group[j]] += 1
                f, ok = _run_pipeline(t, slos[i], rep_free_off[j], rep_nstages[j],
                                      rep_lat_off[j], stage_lat, free, buf)
                if ok:
                    model_good[m] += 1
                    num_good += 1
                    lat_sum += f - t
        if finish is not None:
            finish[i] = f
            good[i] = ok
    return num_good, lat_sum


@njit(cache=True)
def encode_replicas(flat_models, group_sizes, group_pp, group_lat_base, group_block, missing,
                    num_models):
    """Replica arrays of one placement (the encoding described at the top of this module).

    ``flat_models`` (int64[R]) lists the groups' models group after group; ``group_sizes``
    (int64[G]) how many of them each group holds; per group its stage count ``group_pp``, the
    offset of its configuration's latency block in ``stage_lat`` (``group_lat_base``) and the
    row of that configuration in ``missing`` (bool[blocks, M], True: the configuration is
    missing from the model's profile).

    A counting sort by model that walks the groups in order, so each model's replicas are in
    increasing group index (the tie-break order). Returns ``(model_ptr, rep_group,
    rep_free_off, rep_nstages, rep_lat_off, total_stages, bad)``; ``bad`` is the position in
    ``flat_models`` of the first model index outside 0..num_models-1 (the other outputs are
    then meaningless), or -1.
    """
    num_groups = group_sizes.shape[0]
    num_reps = flat_models.shape[0]
    model_ptr = np.zeros(num_models + 1, dtype=np.int32)
    for r in range(num_reps):
        m = flat_models[r]
        if m < 0 or m >= num_models:
            return (model_ptr, np.empty(0, np.int32), np.empty(0, np.int32),
                    np.empty(0, np.int32), np.empty(0, np.int32), 0, r)
        model_ptr[m + 1] += 1
    for m in range(num_models):
        model_ptr[m + 1] += model_ptr[m]
    fill = model_ptr[:num_models].copy()
    rep_group = np.empty(num_reps, dtype=np.int32)
    rep_free_off = np.empty(num_reps, dtype=np.int32)
    rep_nstages = np.empty(num_reps, dtype=np.int32)
    rep_lat_off = np.empty(num_reps, dtype=np.int32)
    r = 0
    free_off = 0
    for g in range(num_groups):
        pp = group_pp[g]
        for _ in range(group_sizes[g]):
            m = flat_models[r]
            r += 1
            j = fill[m]
            fill[m] += 1
            rep_group[j] = g
            rep_free_off[j] = free_off
            rep_nstages[j] = pp
            if missing[group_block[g], m]:
                rep_lat_off[j] = -1
            else:
                rep_lat_off[j] = group_lat_base[g] + m * pp
        free_off += pp
    return model_ptr, rep_group, rep_free_off, rep_nstages, rep_lat_off, free_off, -1


@njit(cache=True)
def merge_sorted(a, b):
    """Merge two strictly increasing int64 arrays with no common element (request index lists
    of disjoint model sets) into one increasing array."""
    na, nb = a.shape[0], b.shape[0]
    out = np.empty(na + nb, dtype=np.int64)
    i = j = k = 0
    while i < na and j < nb:
        if a[i] < b[j]:
            out[k] = a[i]
            i += 1
        else:
            out[k] = b[j]
            j += 1
        k += 1
    while i < na:
        out[k] = a[i]
        i += 1
        k += 1
    while j < nb:
        out[k] = b[j]
        j += 1
        k += 1
    return out
