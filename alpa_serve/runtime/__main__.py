"""Serve a placement over HTTP until interrupted.

    python -m alpa_serve.runtime --placement PLACEMENT --model-set bert-2.6b --num-models 24 \\
        [--slo-scale 5] [--host 127.0.0.1] [--port 8000] [--speedup 1] [--ray-address ADDR]
        [--connect-timeout S] [--num-cpus N] [--max-slo S] [--stall-timeout S]
        [--backend {emulated,jax}] [--profile DB]

``PLACEMENT`` is the placement's JSON (DESIGN 10) or a file holding it, e.g. the ``placement``
column of a result TSV row. Models are named and typed as the experiments name them
(``alpa_serve.model_sets.model_names``: ``m0..`` for a single type), with profiles from the
committed database (``--profile``: another one, e.g. a measured database of
``python -m alpa_serve.profiling.profile``) and SLO = slo_scale x the type's single-device
latency. ``--backend jax`` computes with the JAX models of ``alpa_serve.models`` (real time;
every model type must be one of their small members, profiled); the back end's checks run
before Ray starts. The Ray flags are the experiments runner's (:mod:`alpa_serve.raycluster`).
Exit status: 0 after Ctrl-C or SIGTERM, 2 when the command line or Ray start-up is refused
(one error line).
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence

from alpa_serve import raycluster

logger = logging.getLogger("alpa_serve.runtime")


def _positive(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    from alpa_serve.runtime.backend import BACKENDS
    from alpa_serve.runtime.controller import (
        DEFAULT_MAX_IN_FLIGHT,
        DEFAULT_MAX_SLO,
        DEFAULT_STALL_TIMEOUT,
    )

    parser = argparse.ArgumentParser(prog="python -m alpa_serve.runtime",
                                     description="Serve a placement over HTTP (docs/runtime.md).")
    parser.add_argument("--placement", required=True,
                        help="placement JSON (DESIGN 10), or a file containing it, e.g. the "
                             "placement column of a result TSV row")
    parser.add_argument("--model-set", required=True,
                        help="a model set of experiments.cases.MODEL_SETS or one model type "
                             "(e.g. bert-2.6b)")
    parser.add_argument("--num-models", type=int, required=True,
                        help="number of models; the placement's model indices refer to them")
    parser.add_argument("--slo-scale", type=_positive, default=5.0,
                        help="default SLO of each model = this x its type's single-device "
                             "latency (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address the HTTP front end binds (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000,
                        help="HTTP port; 0 picks a free one (default %(default)s)")
    parser.add_argument("--speedup", type=_positive, default=1.0,
                        help="model seconds per real second (default 1: real time)")
    parser.add_argument("--max-slo", type=_positive, default=DEFAULT_MAX_SLO,
                        help="largest SLO in model seconds a request may ask for (default "
                             "%(default)g); larger ones get HTTP 400")
    parser.add_argument("--stall-timeout", type=_positive, default=DEFAULT_STALL_TIMEOUT,
                        help="real seconds a group may be late before it counts as stalled "
                             "and its requests are answered without it (default %(default)g)")
    parser.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT,
                        help="most admitted requests in flight; more are rejected at once "
                             "(default %(default)s)")
    parser.add_argument("--backend", default="emulated", choices=sorted(BACKENDS),
                        help="device back end: emulated (default; devices busy for the "
                             "profiled latency, no data) or jax (real compute with the JAX "
                             "models of alpa_serve.models; needs the real extra, --speedup 1 "
                             "and measured profiles of small models, see --profile)")
    parser.add_argument("--profile", type=Path, default=None, metavar="PATH",
                        help="profiling database to take the models' profiles from (.pkl, raw "
                             "rows .tsv or the original artifact's pickle; default: the "
                             "committed one), e.g. the output of python -m "
                             "alpa_serve.profiling.profile for --backend jax")
    raycluster.add_arguments(parser, address_alias=True)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if "--address" in (argv if argv is not None else sys.argv[1:]):
        logger.warning("--address is deprecated; use --ray-address (the experiments "
                       "runner's flag)")

    from alpa_serve.model_sets import default_database, model_names, model_types, slo_base
    from alpa_serve.placement_types import ModelPlacement
    from alpa_serve.profiling import ProfilingDatabase
    from alpa_serve.runtime.runtime import Runtime, RuntimeConfig, group_specs
    from alpa_serve.simulator.dispatch import Dispatcher

    text = args.placement
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            parser.error(f"--placement: {text!r} is neither JSON nor an existing file")
        text = path.read_text()
    try:
        placement = ModelPlacement.from_json(text)
    except ValueError as exc:
        parser.error(f"--placement: cannot read the placement: {exc}")
    if not isinstance(placement, ModelPlacement):
        parser.error("--placement: the runtime serves one ModelPlacement; a placement with "
                     "replacement (Clockwork++) is not supported")
    if args.profile is None:
        db = default_database()
    else:
        try:
            db = ProfilingDatabase.load(args.profile)
        except (OSError, ValueError, KeyError) as exc:
            parser.error(f"--profile: cannot use {args.profile}: {exc}")
    try:
        types = model_types(args.model_set, args.num_models)
        profiles = [db.get(t) for t in types]
        config = RuntimeConfig(host=args.host, port=args.port, speedup=args.speedup,
                               backend=args.backend, address=args.ray_address,
                               connect_timeout=args.connect_timeout, num_cpus=args.num_cpus,
                               max_slo=args.max_slo, stall_timeout=args.stall_timeout,
                               max_in_flight=args.max_in_flight)
        names = model_names(args.model_set, args.num_models)
        # The back end's checks (e.g. jax: JAX installed, small models, (op, pp)) before Ray.
        group_specs(Dispatcher(placement, profiles, names), profiles, config)
    except (KeyError, ValueError) as exc:
        parser.error(str(exc).strip("'\""))
    slos = [args.slo_scale * slo_base(p) for p in profiles]
    stop = threading.Event()
    # Ctrl-C or SIGTERM (also during start-up: raycluster keeps these handlers) stops serving.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with Runtime.start(placement, profiles, names, slos, config) as rt:
            logger.info("serving %d models on %d groups at %s (POST %s/v1/models/%s/infer); "
                        "Ctrl-C stops", len(names), placement.num_groups, rt.url, rt.url,
                        names[0])
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:  # a signal while Ray started: raycluster has shut it down
        logger.info("stopped during start-up")
        return 0
    except raycluster.RayConnectError as exc:
        logger.error("%s", exc)
        return 2
    except (ValueError, OSError) as exc:  # e.g. SLOs above --max-slo, port in use
        logger.error("%s", " ".join(str(exc).split()))
        logger.debug("details", exc_info=exc)
        return 2
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
