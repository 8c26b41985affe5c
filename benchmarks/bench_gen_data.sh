#!/usr/bin/env bash
# Wall time of each gen_data script's suite from scratch (DESIGN 8; docs/performance.md,
# "gen_data scripts"). Runs into a fresh folder (default: a temporary one), so no finished case
# is reused, and prints one /usr/bin/time line per suite. Fig. 11 runs without its S3@MAF2
# column unless --with-s3-maf2 is given (that column takes hours on 2 cores).
#   bash benchmarks/bench_gen_data.sh [--with-s3-maf2] [OUT_DIR]
set -euo pipefail
exclude=(--exclude S3_maf2.tsv)
if [ "${1:-}" = "--with-s3-maf2" ]; then exclude=(); shift; fi
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
for spec in "fig14 sec6_5" "fig12 sec6_3" "fig13 sec6_4" "fig11 sec6_2"; do
  set -- $spec
  extra=()
  [ "$1" = fig11 ] && extra=("${exclude[@]}")
  /usr/bin/time -f "$1 wall %e s user %U s sys %S s maxrss %M KB" \
    python3 -m alpa_serve.experiments "$1" --out "$out/$2" --no-progress "${extra[@]}" \
    > "$out/$1.log" 2>&1
  tail -n 1 "$out/$1.log"
done
echo "rows and logs in $out"
