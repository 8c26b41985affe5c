"""Serve a placement over HTTP until interrupted.

    python -m alpa_serve.runtime --placement PLACEMENT --model-set bert-2.6b --num-models 24 \\
        [--slo-scale 5] [--host 127.0.0.1] [--port 8000] [--speedup 1] [--address ADDR]

``PLACEMENT`` is the placement's JSON (DESIGN 10) or a file holding it, e.g. the ``placement``
column of a result TSV row. Models are named and typed as the experiments name them
(``experiments.cases.model_names``: ``m0..`` for a single type), with profiles from the
committed database and SLO = slo_scale x the type's single-device latency.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alpa_serve.runtime",
                                     description="Serve a placement over HTTP (docs/runtime.md).")
    parser.add_argument("--placement", required=True,
                        help="placement JSON, or a file containing it")
    parser.add_argument("--model-set", required=True,
                        help="a model set of experiments.cases.MODEL_SETS or one model type")
    parser.add_argument("--num-models", type=int, required=True)
    parser.add_argument("--slo-scale", type=float, default=5.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--speedup", type=float, default=1.0,
                        help="model seconds per real second (default 1: real time)")
    parser.add_argument("--address", default=None, help="Ray cluster to join")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from alpa_serve.experiments.case_runner import default_database, slo_base
    from alpa_serve.experiments.cases import model_names, model_types
    from alpa_serve.placement import ModelPlacement
    from alpa_serve.runtime.runtime import Runtime, RuntimeConfig

    text = args.placement
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.exists():
            parser.error(f"--placement: {text!r} is neither JSON nor an existing file")
        text = path.read_text()
    try:
        placement = ModelPlacement.from_json(text)
    except ValueError as exc:
        parser.error(f"--placement: cannot read the placement: {exc}")
    if not isinstance(placement, ModelPlacement):
        parser.error("--placement: the runtime serves one ModelPlacement; a placement with "
                     "replacement (Clockwork++) is not supported")
    db = default_database()
    types = model_types(args.model_set, args.num_models)
    profiles = [db.get(t) for t in types]
    slos = [args.slo_scale * slo_base(p) for p in profiles]
    names = model_names(args.model_set, args.num_models)
    config = RuntimeConfig(host=args.host, port=args.port, speedup=args.speedup,
                           address=args.address)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime.start(placement, profiles, names, slos, config) as rt:
        print(f"serving {len(names)} models on {placement.num_groups} groups at {rt.url} "
              f"(POST {rt.url}/v1/models/{names[0]}/infer); Ctrl-C stops", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
