"""Named small members of the model zoo's two families, measured on the machine at hand
(DESIGN 3.4; docs/profiling.md, "Measured profiles").

One name -> one :class:`~alpa_serve.models.arch.ModelArch`. The dense members follow the
compact BERTs of "Well-Read Students Learn Better" (Turc et al., 2019: L layers, hidden H,
H / 64 heads, BERT's 30522-token vocabulary), at sequence length 128; the MoE members are the
same encoders with every second layer a mixture of 8 experts with top-2 routing, as the zoo's
MoE models (DESIGN 3.2). Weights are drawn from a seed (``alpa_serve.models.transformer``),
never downloaded.

Standard library only: names and checks are available without JAX.
"""
from __future__ import annotations

from alpa_serve.models.arch import ModelArch

#: BERT's WordPiece vocabulary size.
BERT_VOCAB = 30522
#: Sequence length of every small member (tokens per request).
SMALL_SEQ_LEN = 128

#: The small members, by name (parameter counts in docs/profiling.md).
SMALL_MODELS: dict[str, ModelArch] = {
    a.name: a for a in (
        ModelArch("bert-tiny", "dense", 2, 128, 2, SMALL_SEQ_LEN, BERT_VOCAB),
        ModelArch("bert-mini", "dense", 4, 256, 4, SMALL_SEQ_LEN, BERT_VOCAB),
        ModelArch("bert-small", "dense", 4, 512, 8, SMALL_SEQ_LEN, BERT_VOCAB),
        ModelArch("bert-medium", "dense", 8, 512, 8, SMALL_SEQ_LEN, BERT_VOCAB),
        ModelArch("bert-base", "dense", 12, 768, 12, SMALL_SEQ_LEN, BERT_VOCAB),
        ModelArch("moe-mini", "moe", 4, 256, 4, SMALL_SEQ_LEN, BERT_VOCAB, num_experts=8),
        ModelArch("moe-small", "moe", 4, 512, 8, SMALL_SEQ_LEN, BERT_VOCAB, num_experts=8),
    )
}

#: Models the profiler measures when ``--models`` is not given (DESIGN 3.4's speed goal: these
#: three x every (op, pp) with op x pp <= 2 x five batch sizes).
DEFAULT_PROFILE_MODELS: tuple[str, ...] = ("bert-tiny", "bert-mini", "moe-mini")


class UnknownArchitectureError(KeyError):
    """A model name that is not a small member (nor an architecture passed explicitly)."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(name)

    def __str__(self) -> str:
        return (f"unknown model {self.name!r}; the measured path knows: {', '.join(self.known)} "
                f"(alpa_serve.models.zoo.SMALL_MODELS)")


def get_arch(name: str) -> ModelArch:
    """The small member called ``name``; :class:`UnknownArchitectureError` otherwise."""
    try:
        return SMALL_MODELS[name]
    except KeyError:
        raise UnknownArchitectureError(name, list(SMALL_MODELS)) from None


def layer_partition(num_layers: int, pp: int) -> list[range]:
    """Consecutive layer slices of the ``pp`` pipeline stages: as even as possible, the first
    ``num_layers % pp`` stages one layer longer (stage 0 also holds the embeddings)."""
    if not 1 <= pp <= num_layers:
        raise ValueError(f"pp={pp} needs 1 <= pp <= layers ({num_layers})")
    base, extra = divmod(num_layers, pp)
    out, start = [], 0
    for k in range(pp):
        n = base + (1 if k < extra else 0)
        out.append(range(start, start + n))
        start += n
    return out


def parallel_config_problem(arch: ModelArch, op: int, pp: int) -> str | None:
    """Why ``arch`` cannot run with intra-op degree ``op`` and ``pp`` stages (None if it can).

    op splits attention heads, the FFN's inner width, the vocabulary rows of the embedding
    (padded, see ``transformer.padded_vocab``) and the experts of MoE layers (expert parallel);
    pp needs at least one layer per stage.
    """
    if op < 1 or pp < 1:
        return f"op and pp must be >= 1, got op={op}, pp={pp}"
    if pp > arch.num_layers:
        return f"pp={pp} exceeds the {arch.num_layers} layers of {arch.name}"
    if arch.heads % op:
        return f"op={op} does not divide the {arch.heads} attention heads of {arch.name}"
    if arch.ffn % op:
        return f"op={op} does not divide the FFN width {arch.ffn} of {arch.name}"
    if arch.kind == "moe" and arch.num_experts % op:
        return f"op={op} does not divide the {arch.num_experts} experts of {arch.name}"
    return None
