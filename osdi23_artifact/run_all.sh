#!/usr/bin/env bash
# The whole reproduction (the README's main job): data and figures of Sections 6.2-6.5 and the
# Section 3 motivation figures. Every gen_data script resumes: rerunning skips finished cases.
# Extra arguments go to every gen_data script (e.g. --serial, --ray-address H:P, --force);
# --no-precomputed (compute the shipped S3@MAF2 Beta rows too, hours) goes to Fig. 11's only.
set -euo pipefail
cd "$(dirname "$0")"
for sec in 6_2_e2e 6_3_large 6_4_robust 6_5_ab; do
  args=()
  for a in "$@"; do
    if [ "$a" != "--no-precomputed" ] || [ "$sec" = 6_2_e2e ]; then args+=("$a"); fi
  done
  echo "== gen_data_sec${sec}.sh"
  /usr/bin/time -f "gen_data_sec${sec}.sh: %e s wall" bash "gen_data_sec${sec}.sh" ${args[@]+"${args[@]}"}
  echo "== plot_sec${sec}.py"
  python3 "plot_sec${sec}.py" --pdf --png
done
echo "== motivation figures (Section 3)"
(cd .. && python3 -m studies.motivation.run_all)
echo "figures: $(pwd)/paper_figures and $(cd ../studies/motivation && pwd)/figures"
