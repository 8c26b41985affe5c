#!/usr/bin/env bash
# Generate the data of Fig. 11 (Section 6.2): six columns x four sweeps -> sec6_2_data/{S1,S2,S3}_{maf1,maf2}.tsv
# Thin wrapper over the experiment runner; extra arguments are passed through, e.g.
#   bash gen_data_sec6_2_e2e.sh --quick            # reduced grid (smoke test)
#   bash gen_data_sec6_2_e2e.sh --serial           # no Ray
#   bash gen_data_sec6_2_e2e.sh --ray-address H:P  # run on an existing Ray cluster
#   bash gen_data_sec6_2_e2e.sh --force            # recompute everything (otherwise finished cases are skipped)
#   bash gen_data_sec6_2_e2e.sh --profile P.pkl    # simulate with another profile, e.g. the original artifact's
#   bash gen_data_sec6_2_e2e.sh --search fast      # opt-in fast search (trained on a reduced day; rows say search=fast; DESIGN 7.8)
#   bash gen_data_sec6_2_e2e.sh --no-precomputed   # also compute the shipped S3@MAF2 Beta rows (hours)
# Like the original artifact, the slow S3@MAF2 Beta cases are shipped precomputed (by this code,
# see precomputed/README.md) and copied in unless --no-precomputed or --force is given.
# See docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")"
seed=(--seed-from precomputed/sec6_2_data)
args=()
for a in "$@"; do
  if [ "$a" = "--no-precomputed" ]; then seed=(); else args+=("$a"); fi
done
exec python3 -m alpa_serve.experiments fig11 --out sec6_2_data ${seed[@]+"${seed[@]}"} ${args[@]+"${args[@]}"}
