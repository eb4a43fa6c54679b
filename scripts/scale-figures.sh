#!/bin/bash
# scale-figures.sh: the pool-scaling figures of docs/performance.md, for two
# htexctl binaries side by side: for each pool count, `bench --mode noop
# --pools N --slots-per-pool 64` runs alternately with A and B, RUNS times,
# and the medians go to OUT (one line per binary and pool count):
#
#   scripts/scale-figures.sh [-n RUNS] [-t TASKS] OUT BIN_A BIN_B [POOLS...]
#
# scripts/plot-scale.sh OUT PNG draws them. Both binaries need bench --pools.
set -euo pipefail

runs=3
tasks=1000000
while getopts n:t: o; do
	case $o in
	n) runs=$OPTARG ;;
	t) tasks=$OPTARG ;;
	*) sed -n '2,10p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
out=$1 a=$2 b=$3
shift 3
pools=("$@")
[ ${#pools[@]} -gt 0 ] || pools=(1 10 100 1000)
command -v jq >/dev/null || { echo "scale-figures: needs jq" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work TMPDIR=$work
for p in "${pools[@]}"; do
	for i in $(seq "$runs"); do
		for side in a b; do
			bin=$a
			[ $side = b ] && bin=$b
			"$bin" bench --mode noop --pools "$p" --slots-per-pool 64 --tasks "$tasks" --json 2>"$work/err" >"$work/one" ||
				{ tail -5 "$work/err" >&2; exit 1; }
			echo "$side pools=$p run $i: $(cat "$work/one")" >&2
			jq -r '[.tasks_per_second, .p50_ms, .p99_ms, .daemon_rss_mb, .register_seconds] | @tsv' "$work/one" >>"$work/$side.$p"
		done
	done
done

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
{
	echo "# pools slots_per_pool side tasks_per_s p50_ms p99_ms daemon_rss_mb register_s  (medians of $runs runs, $tasks tasks, $(nproc) cores)"
	echo "# A = $a, B = $b"
	for p in "${pools[@]}"; do
		for side in a b; do
			f=$work/$side.$p
			printf '%s 64 %s' "$p" "$(echo $side | tr ab AB)"
			for col in 1 2 3 4 5; do printf ' %s' "$(cut -f$col "$f" | median)"; done
			echo
		done
	done
} >"$out"
cat "$out"
