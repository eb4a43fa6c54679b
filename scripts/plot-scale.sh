#!/bin/bash
# plot-scale.sh DATA PNG: draws the output of scale-figures.sh (gnuplot,
# Debian package gnuplot-nox): throughput and daemon RSS against the
# number of pools, for both binaries.
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,4p' "$0" >&2; exit 2; }
data=$1 png=$2
command -v gnuplot >/dev/null || { echo "plot-scale: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 2; }
gnuplot <<GP
set terminal pngcairo size 1000,420 font ",10"
set output "$png"
set multiplot layout 1,2 title "htexctl bench --mode noop --pools N --slots-per-pool 64 (medians; $(grep -o '[0-9]* runs, [0-9]* tasks, [0-9]* cores' "$data"))"
set logscale x
set xlabel "pools (64 slots each)"
set xtics ("1" 1, "10" 10, "100" 100, "1000" 1000)
set key top right
set grid
set ylabel "tasks/s"
set yrange [0:*]
plot "< grep ' A ' $data" using 1:4 with linespoints pt 7 title "before", \
     "< grep ' B ' $data" using 1:4 with linespoints pt 5 title "after"
set ylabel "daemon peak RSS (MB)"
plot "< grep ' A ' $data" using 1:7 with linespoints pt 7 title "before", \
     "< grep ' B ' $data" using 1:7 with linespoints pt 5 title "after"
unset multiplot
GP
