#!/bin/bash
# bench-compare.sh: compare two htexctl binaries with `htexctl bench`, side
# by side in one run: the two alternate (A B A B ...) so that the machine's
# drift falls on both, and the medians and their ratio are printed.
#
#   scripts/bench-compare.sh [-n RUNS] BIN_A BIN_B [BENCH OPTIONS...]
#
# e.g. the static build against the development one:
#   scripts/bench-compare.sh -n 5 bin/htexctl dist/htexctl --mode exec --tasks 5000
# or a commit against the previous one (build each into its own file first).
set -euo pipefail

runs=5
if [ "${1:-}" = "-n" ]; then
	runs=$2
	shift 2
fi
[ $# -ge 2 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
a=$1 b=$2
shift 2
for bin in "$a" "$b"; do
	[ -x "$bin" ] || { echo "bench-compare: $bin is not executable" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work # each bench's run directory stays in here

rate() { sed -n 's/.*: \([0-9][0-9]*\) tasks\/s, p50 \([0-9.]*\) ms.*/\1 \2/p'; }
for i in $(seq "$runs"); do
	for side in a b; do
		bin=$a
		[ $side = b ] && bin=$b
		line=$("$bin" bench "$@" | tail -1)
		echo "$side $i: $line" >&2
		echo "$line" | rate >>"$work/$side"
	done
done

median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ra=$(cut -d' ' -f1 "$work/a" | median)
rb=$(cut -d' ' -f1 "$work/b" | median)
la=$(cut -d' ' -f2 "$work/a" | median)
lb=$(cut -d' ' -f2 "$work/b" | median)
echo "A $a: median $ra tasks/s, p50 $la ms ($runs runs)"
echo "B $b: median $rb tasks/s, p50 $lb ms ($runs runs)"
awk -v a="$ra" -v b="$rb" -v n="$(nproc)" 'BEGIN {printf "B/A throughput: %.3f on %d cores\n", b / a, n}'
