"""Architecture facts of a transformer model (DESIGN 3.2, 3.4): the one definition shared by the
V100 cost model (``alpa_serve.profiling``) and the JAX implementations (``alpa_serve.models``).

Standard library only: importing it never imports JAX.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelArch:
    """Architecture facts of one model (DESIGN 3.2).

    MoE models: every ``moe_every``-th layer (the 2nd, 4th, ...) is a mixture-of-experts layer
    holding ``num_experts`` experts with an FFN of 8 h^2 parameters each; tokens go to ``top_k``
    experts. The other layers are dense. ``num_experts`` is our reconstruction (chosen so the
    parameter count matches the model's name within 4%).
    """

    name: str
    kind: Literal["dense", "moe"]
    num_layers: int
    hidden: int
    heads: int
    seq_len: int
    vocab: int
    num_experts: int = 0
    moe_every: int = 2
    top_k: int = 2

    # -- structure ---------------------------------------------------------------------------
    @property
    def ffn(self) -> int:
        """Width of the FFN's inner layer: 4h (the 8h^2 FFN parameters of ``layer_params``)."""
        return 4 * self.hidden

    @property
    def head_dim(self) -> int:
        """Width of one attention head: hidden / heads."""
        return self.hidden // self.heads

    def is_moe_layer(self, i: int) -> bool:
        """True if layer ``i`` (0-based) is a mixture-of-experts layer."""
        return self.kind == "moe" and (i % self.moe_every) == self.moe_every - 1

    def layer_params(self, i: int) -> int:
        """Parameters of layer ``i`` (count): attention 4h^2+4h, FFN 8h^2+5h (or E experts
        of 8h^2+5h plus an h x E gate), two layer norms 4h."""
        h = self.hidden
        attention = 4 * h * h + 4 * h
        norms = 4 * h
        if self.is_moe_layer(i):
            ffn = self.num_experts * (8 * h * h + 5 * h) + h * self.num_experts
        else:
            ffn = 8 * h * h + 5 * h
        return attention + ffn + norms

    def embedding_params(self) -> int:
        """Word + position embedding parameters (count)."""
        return (self.vocab + self.seq_len) * self.hidden

    def param_count(self) -> int:
        """Total parameters (count)."""
        return self.embedding_params() + sum(self.layer_params(i) for i in range(self.num_layers))

    def param_bytes(self) -> float:
        """Total fp16 parameter bytes."""
        return 2.0 * self.param_count()

    def layer_flops(self, i: int, batch_size: int) -> float:
        """Forward FLOPs of layer ``i`` for ``batch_size`` sequences of ``seq_len`` tokens.

        Dense: 24 b s h^2 (QKV 6, output 2, FFN 16) + 4 b s^2 h (scores and context).
        MoE layer: attention 8 b s h^2 + 4 b s^2 h, each token through ``top_k`` experts
        (16 b s h^2 each) and the gate 2 b s h E.
        """
        b, s, h = batch_size, self.seq_len, self.hidden
        attention = 8 * b * s * h * h + 4 * b * s * s * h
        if self.is_moe_layer(i):
            ffn = self.top_k * 16 * b * s * h * h + 2 * b * s * h * self.num_experts
        else:
            ffn = 16 * b * s * h * h
        return float(attention + ffn)

    def total_flops(self, batch_size: int) -> float:
        """Forward FLOPs of the whole model (embedding lookup is free; no LM head is served)."""
        return sum(self.layer_flops(i, batch_size) for i in range(self.num_layers))

    def activation_bytes(self, batch_size: int) -> float:
        """Bytes of one fp16 activation tensor b x s x h (what flows between layers/stages)."""
        return 2.0 * batch_size * self.seq_len * self.hidden
