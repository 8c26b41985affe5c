#!/usr/bin/env bash
# Generate the data of Fig. 12 (Section 6.3): 4 x bert-103.5b on 64 devices -> sec6_3_data/large_model_exp.tsv
# Thin wrapper over the experiment runner; extra arguments are passed through, e.g.
#   bash gen_data_sec6_3_large.sh --quick            # reduced grid (smoke test)
#   bash gen_data_sec6_3_large.sh --serial           # no Ray
#   bash gen_data_sec6_3_large.sh --ray-address H:P  # run on an existing Ray cluster
#   bash gen_data_sec6_3_large.sh --force            # recompute everything (otherwise finished cases are skipped)
#   bash gen_data_sec6_3_large.sh --profile P.pkl    # simulate with another profile, e.g. the original artifact's
#   bash gen_data_sec6_3_large.sh --search fast      # opt-in fast search (trained on a reduced day; rows say search=fast; DESIGN 7.8)
# See docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")"
exec python3 -m alpa_serve.experiments fig12 --out sec6_3_data "$@"
