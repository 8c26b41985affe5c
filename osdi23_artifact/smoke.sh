#!/usr/bin/env bash
# CI smoke run: every gen_data/plot pair on its reduced (--quick) grid, written to a temporary
# folder so it never mixes with full results in sec6_*_data/.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
declare -A data=([6_2_e2e]=sec6_2_data [6_3_large]=sec6_3_data [6_4_robust]=sec6_4_data [6_5_ab]=sec6_5_data)
for sec in 6_2_e2e 6_3_large 6_4_robust 6_5_ab; do
  bash "gen_data_sec${sec}.sh" --quick --no-progress --num-cpus 2 --out "$out/${data[$sec]}"
  python3 "plot_sec${sec}.py" --pdf --png --data-dir "$out/${data[$sec]}" --out-dir "$out/paper_figures"
done
ls "$out/paper_figures"
echo "smoke: every gen_data/plot pair ran on its quick grid"
