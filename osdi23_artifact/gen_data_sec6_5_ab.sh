#!/usr/bin/env bash
# Generate the data of Fig. 14 (Section 6.5): ablation -> sec6_5_data/ablation.tsv
# Thin wrapper over the experiment runner; extra arguments are passed through, e.g.
#   bash gen_data_sec6_5_ab.sh --quick            # reduced grid (smoke test)
#   bash gen_data_sec6_5_ab.sh --serial           # no Ray
#   bash gen_data_sec6_5_ab.sh --ray-address H:P  # run on an existing Ray cluster
#   bash gen_data_sec6_5_ab.sh --force            # recompute everything (otherwise finished cases are skipped)
#   bash gen_data_sec6_5_ab.sh --profile P.pkl    # simulate with another profile, e.g. the original artifact's
#   bash gen_data_sec6_5_ab.sh --search fast      # opt-in fast search (trained on a reduced day; rows say search=fast; DESIGN 7.8)
# See docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")"
exec python3 -m alpa_serve.experiments fig14 --out sec6_5_data "$@"
