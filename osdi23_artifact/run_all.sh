#!/usr/bin/env bash
# The whole reproduction (the README's main job): data and figures of Sections 6.2-6.5 and the
# Section 3 motivation figures. Every gen_data script resumes: rerunning skips finished cases.
# Extra arguments go to every gen_data script (e.g. --serial, --ray-address H:P, --force);
# --no-precomputed (compute the shipped S3@MAF2 Beta rows too, hours) goes to Fig. 11's only.
# The S3@MAF2 column of Fig. 11 runs last (its Beta cases that are not shipped precomputed take
# hours on 2 cores), so every other figure is ready first; Fig. 11 is drawn twice.
set -euo pipefail
cd "$(dirname "$0")"

split=1  # run Fig. 11 without S3@MAF2 first, S3@MAF2 at the end
for a in "$@"; do
  case "$a" in --only|--only=*|--exclude|--exclude=*) split=0 ;; esac
done

gen_and_plot() {  # SECTION [extra arguments of the gen_data script]
  local sec="$1"; shift
  local args=()
  for a in "${@}"; do
    if [ "$a" != "--no-precomputed" ] || [ "$sec" = 6_2_e2e ]; then args+=("$a"); fi
  done
  echo "== gen_data_sec${sec}.sh ${args[*]+"${args[*]}"}"
  /usr/bin/time -f "gen_data_sec${sec}.sh: %e s wall" bash "gen_data_sec${sec}.sh" ${args[@]+"${args[@]}"}
  echo "== plot_sec${sec}.py"
  python3 "plot_sec${sec}.py" --pdf --png
}

if [ "$split" = 1 ]; then
  gen_and_plot 6_2_e2e "$@" --exclude S3_maf2.tsv
else
  gen_and_plot 6_2_e2e "$@"
fi
for sec in 6_3_large 6_4_robust 6_5_ab; do
  gen_and_plot "$sec" "$@"
done
echo "== motivation figures (Section 3)"
(cd .. && python3 -m studies.motivation.run_all)
if [ "$split" = 1 ]; then
  echo "== Fig. 11, S3@MAF2 column (see osdi23_artifact/README.md for its time)"
  gen_and_plot 6_2_e2e "$@" --only S3_maf2.tsv
fi
echo "figures: $(pwd)/paper_figures and $(cd ../studies/motivation && pwd)/figures"
