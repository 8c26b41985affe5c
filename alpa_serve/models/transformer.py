"""JAX implementation of the zoo's two families (DESIGN 3.2, 3.4): a BERT-style encoder and its
mixture-of-experts variant, at any size given by a :class:`~alpa_serve.models.arch.ModelArch`.

The layer functions work on the **local shard** of an intra-operator group (Megatron-style,
``docs/profiling.md``, "Measured profiles"); ``axis`` names the mesh axis of the ``op`` devices
(None: one device, no collective):

* embedding: the word table's rows are split over the op devices (vocabulary-parallel: each
  device looks up the tokens it holds, zeros elsewhere), then one all-reduce; position
  embeddings and the layer norm are replicated;
* attention: heads split over the op devices (QKV column-parallel, the output projection
  row-parallel), one all-reduce, then bias, residual and layer norm (replicated);
* dense FFN: first matmul column-parallel, second row-parallel, one all-reduce;
* MoE FFN: experts split over the op devices (expert parallel). The gate and the top-k routing
  are computed on every device from the replicated activations; each device runs its own
  experts on the tokens routed to them (capacity-limited buffers, GShard-style) and adds their
  gated outputs into a partial result; one all-reduce combines them.

So a layer costs two all-reduces (one per block); op = 1 computes the same function with none.
Post-layer-norm layers as BERT (``x = LN(x + block(x))``), GELU, float32 by default. Weights are
drawn from a seed on the host (:func:`init_params`), never downloaded. A request is a row of
``seq_len`` token ids; the model's output is the final hidden state of the first token (BERT's
[CLS] position), ``hidden`` floats per sequence (no pooler or LM head, as the zoo's serving
latencies count none).

Importing this module imports JAX (:func:`~alpa_serve.models.jaxenv.require_jax`).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from alpa_serve.models.arch import ModelArch
from alpa_serve.models.jaxenv import require_jax

jax = require_jax()
import jax.numpy as jnp  # noqa: E402 - after the check that JAX is installed
from jax import lax  # noqa: E402

#: Layer-norm epsilon (BERT's).
LN_EPS = 1e-12
#: Standard deviation of the initial weights (BERT's initializer range).
INIT_STD = 0.02
#: The word table's rows are padded to a multiple of this (so that op | rows for op <= 64);
#: padding rows are never looked up.
VOCAB_ROUND = 64
#: Expert capacity = ceil(factor x top_k x tokens / experts) slots per expert and batch; tokens
#: routed beyond it are dropped for that expert (GShard). Static shapes, so the compute per
#: request does not depend on the routing.
MOE_CAPACITY_FACTOR = 1.25

Params = dict[str, Any]


def padded_vocab(arch: ModelArch) -> int:
    """Rows of the word-embedding table: the vocabulary rounded up to ``VOCAB_ROUND``."""
    return -(-arch.vocab // VOCAB_ROUND) * VOCAB_ROUND


def expert_capacity(arch: ModelArch, tokens: int) -> int:
    """Slots per expert for a batch of ``tokens`` tokens (see ``MOE_CAPACITY_FACTOR``)."""
    return max(1, math.ceil(MOE_CAPACITY_FACTOR * arch.top_k * tokens / arch.num_experts))


# ------------------------------------------------------------------------------------------
# Weights
# ------------------------------------------------------------------------------------------
def init_params(arch: ModelArch, seed: int = 0) -> Params:
    """All weights of ``arch`` as host float32 arrays, drawn from ``seed`` in a fixed order.

    Layout (h = hidden, n = heads, d = h / n, f = 4h, E = experts)::

        {"embed": {"word": [V', h], "pos": [seq, h], "ln_g": [h], "ln_b": [h]},
         "layers": [{"attn": {"wqkv": [h, 3, n, d], "bqkv": [3, n, d], "wo": [n, d, h],
                              "bo": [h], "ln_g": [h], "ln_b": [h]},
                     "ffn": dense {"w1": [h, f], "b1": [f], "w2": [f, h], "b2": [h], ln}
                            or MoE {"gate": [h, E], "w1": [E, h, f], "b1": [E, f],
                                    "w2": [E, f, h], "b2": [E, h], ln}}, ...]}

    Matrices and biases ~ N(0, 0.02^2), layer-norm gains 1 + N(0, 0.02^2).
    """
    rng = np.random.default_rng(seed)
    h, n, d, f, e = arch.hidden, arch.heads, arch.head_dim, arch.ffn, arch.num_experts

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(0.0, INIT_STD, size=shape).astype(np.float32)

    def norm() -> dict[str, np.ndarray]:
        return {"ln_g": (1.0 + normal(h)).astype(np.float32), "ln_b": normal(h)}

    params: Params = {"embed": {"word": normal(padded_vocab(arch), h),
                                "pos": normal(arch.seq_len, h), **norm()},
                      "layers": []}
    for i in range(arch.num_layers):
        attn = {"wqkv": normal(h, 3, n, d), "bqkv": normal(3, n, d), "wo": normal(n, d, h),
                "bo": normal(h), **norm()}
        if arch.is_moe_layer(i):
            ffn = {"gate": normal(h, e), "w1": normal(e, h, f), "b1": normal(e, f),
                   "w2": normal(e, f, h), "b2": normal(e, h), **norm()}
        else:
            ffn = {"w1": normal(h, f), "b1": normal(f), "w2": normal(f, h), "b2": normal(h),
                   **norm()}
        params["layers"].append({"attn": attn, "ffn": ffn})
    return params


def param_specs(params: Params, axis: str) -> Params:
    """The PartitionSpec of every weight (same tree as ``params``; op split over ``axis``)."""
    from jax.sharding import PartitionSpec as P

    split = {  # weight name -> spec, by block kind
        "embed": {"word": P(axis, None)},
        "attn": {"wqkv": P(None, None, axis, None), "bqkv": P(None, axis, None),
                 "wo": P(axis, None, None)},
        "dense": {"w1": P(None, axis), "b1": P(axis), "w2": P(axis, None)},
        "moe": {"w1": P(axis, None, None), "b1": P(axis, None), "w2": P(axis, None, None),
                "b2": P(axis, None)},
    }

    def block(kind: str, tree: dict) -> dict:
        return {k: split[kind].get(k, P()) for k in tree}

    out: Params = {}
    if "embed" in params:
        out["embed"] = block("embed", params["embed"])
    out["layers"] = [{"attn": block("attn", lp["attn"]),
                      "ffn": block("moe" if "gate" in lp["ffn"] else "dense", lp["ffn"])}
                     for lp in params["layers"]]
    return out


# ------------------------------------------------------------------------------------------
# Layers (local shards; ``axis`` None = one device)
# ------------------------------------------------------------------------------------------
def _all_reduce(x: Any, axis: Optional[str]) -> Any:
    return x if axis is None else lax.psum(x, axis)


def _shard_index(axis: Optional[str]) -> Any:
    return 0 if axis is None else lax.axis_index(axis)


def layer_norm(x: Any, g: Any, b: Any) -> Any:
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) * lax.rsqrt(var + LN_EPS) * g + b


def embed(p: dict, tokens: Any, axis: Optional[str]) -> Any:
    """Token ids [b, s] -> hidden states [b, s, h] (vocabulary-parallel lookup)."""
    rows = p["word"].shape[0]
    local = tokens - _shard_index(axis) * rows
    mine = (local >= 0) & (local < rows)
    x = jnp.take(p["word"], jnp.where(mine, local, 0), axis=0) * mine[..., None]
    x = _all_reduce(x, axis) + p["pos"][None, : tokens.shape[1]]
    return layer_norm(x, p["ln_g"], p["ln_b"])


def attention(p: dict, x: Any, axis: Optional[str]) -> Any:
    """Self-attention block over the local heads, all-reduce, residual, layer norm."""
    d = p["wqkv"].shape[-1]
    qkv = jnp.einsum("bsh,hcnd->cbnsd", x, p["wqkv"]) + p["bqkv"][:, None, :, None, :]
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = jnp.einsum("bnqd,bnkd->bnqk", q, k) * (1.0 / math.sqrt(d))
    ctx = jnp.einsum("bnqk,bnkd->bnqd", jax.nn.softmax(scores, axis=-1), v)
    out = _all_reduce(jnp.einsum("bnsd,ndh->bsh", ctx, p["wo"]), axis) + p["bo"]
    return layer_norm(x + out, p["ln_g"], p["ln_b"])


def dense_ffn(p: dict, x: Any, axis: Optional[str]) -> Any:
    """FFN block over the local slice of the inner width, all-reduce, residual, layer norm."""
    y = jax.nn.gelu(x @ p["w1"] + p["b1"]) @ p["w2"]
    y = _all_reduce(y, axis) + p["b2"]
    return layer_norm(x + y, p["ln_g"], p["ln_b"])


def moe_ffn(p: dict, x: Any, axis: Optional[str], arch: ModelArch) -> Any:
    """Mixture-of-experts block: top-k routing (replicated), the local experts on their
    capacity-limited token buffers, gated partial outputs, all-reduce, residual, layer norm.

    Slot order: all first choices before all second choices, tokens in order within a choice
    (so a token's first choice is dropped only when its expert is full of first choices)."""
    b, s, h = x.shape
    t, k, e = b * s, arch.top_k, arch.num_experts
    cap = expert_capacity(arch, t)
    xt = x.reshape(t, h)
    probs = jax.nn.softmax(xt @ p["gate"], axis=-1)              # [t, E]
    top_p, top_e = lax.top_k(probs, k)                           # [t, k]
    top_p = top_p / jnp.sum(top_p, axis=-1, keepdims=True)
    choice = jax.nn.one_hot(top_e.T.reshape(k * t), e, dtype=jnp.int32)   # [k t, E]
    pos = jnp.sum((jnp.cumsum(choice, axis=0) - 1) * choice, axis=-1)     # slot in its expert
    expert = top_e.T.reshape(k * t)
    token = jnp.tile(jnp.arange(t, dtype=jnp.int32), k)
    gate = top_p.T.reshape(k * t).astype(x.dtype)
    local_experts = p["w1"].shape[0]
    local = expert - _shard_index(axis) * local_experts
    mine = (pos < cap) & (local >= 0) & (local < local_experts)
    slots = local_experts * cap
    slot = jnp.where(mine, local * cap + pos, slots)             # ``slots``: discarded
    slot_token = jnp.full((slots + 1,), t, jnp.int32).at[slot].set(token)[:slots]
    slot_gate = jnp.zeros((slots + 1,), x.dtype).at[slot].set(gate)[:slots]
    padded = jnp.concatenate([xt, jnp.zeros((1, h), xt.dtype)])  # row t: empty slot
    xin = padded[slot_token].reshape(local_experts, cap, h)
    mid = jax.nn.gelu(jnp.einsum("ech,ehf->ecf", xin, p["w1"]) + p["b1"][:, None, :])
    out = jnp.einsum("ecf,efh->ech", mid, p["w2"]) + p["b2"][:, None, :]
    out = out.reshape(slots, h) * slot_gate[:, None]
    y = jnp.zeros((t + 1, h), x.dtype).at[slot_token].add(out)[:t]
    y = _all_reduce(y, axis).reshape(b, s, h)
    return layer_norm(x + y, p["ln_g"], p["ln_b"])


def stage_forward(arch: ModelArch, layer_ids: range, first: bool, last: bool,
                  axis: Optional[str], params: Params, x: Any) -> Any:
    """One pipeline stage on its local shards: [embedding,] layers ``layer_ids`` [, output].

    ``x``: token ids [b, seq] (int32) for the first stage, else hidden states [b, seq, h].
    Returns hidden states, or [b, h] (the first token's) for the last stage.
    """
    if first:
        x = embed(params["embed"], x, axis)
    for i, lp in zip(layer_ids, params["layers"]):
        x = attention(lp["attn"], x, axis)
        if arch.is_moe_layer(i):
            x = moe_ffn(lp["ffn"], x, axis, arch)
        else:
            x = dense_ffn(lp["ffn"], x, axis)
    if last:
        x = x[:, 0, :]
    return x


def reference_forward(arch: ModelArch, params: Params, tokens: Any) -> np.ndarray:
    """The whole model on one device, no sharding (the function every (op, pp) must compute):
    token ids [b, seq] -> [b, hidden]."""
    fn = jax.jit(lambda p, x: stage_forward(arch, range(arch.num_layers), True, True, None,
                                            p, x))
    dev = jax.devices()[0]
    return np.asarray(fn(jax.device_put(params, dev),
                         jax.device_put(np.asarray(tokens, dtype=np.int32), dev)))


def example_tokens(arch: ModelArch, batch_size: int, seed: int = 0) -> np.ndarray:
    """A batch of random token ids [batch_size, seq_len] (int32) drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, arch.vocab, size=(batch_size, arch.seq_len), dtype=np.int32)
