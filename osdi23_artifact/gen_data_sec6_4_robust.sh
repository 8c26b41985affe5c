#!/usr/bin/env bash
# Generate the data of Fig. 13 (Section 6.4): three MAF1 train/test pairs -> sec6_4_data/robust_pair{1,2,3}.tsv
# Thin wrapper over the experiment runner; extra arguments are passed through, e.g.
#   bash gen_data_sec6_4_robust.sh --quick            # reduced grid (smoke test)
#   bash gen_data_sec6_4_robust.sh --serial           # no Ray
#   bash gen_data_sec6_4_robust.sh --ray-address H:P  # run on an existing Ray cluster
#   bash gen_data_sec6_4_robust.sh --force            # recompute everything (otherwise finished cases are skipped)
#   bash gen_data_sec6_4_robust.sh --profile P.pkl    # simulate with another profile, e.g. the original artifact's
#   bash gen_data_sec6_4_robust.sh --search fast      # opt-in fast search (trained on a reduced day; rows say search=fast; DESIGN 7.8)
# See docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")"
exec python3 -m alpa_serve.experiments fig13 --out sec6_4_data "$@"
