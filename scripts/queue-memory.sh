#!/bin/bash
# queue-memory.sh BIN FILE: submit FILE (one command a line) with one
# `submit --file` to a daemon of BIN that has no pools, and print how long
# the submit took, the daemon's peak RSS (VmHWM, proc(5)) and the submitting
# client's (GNU time's %M, when /usr/bin/time is there).
#   scripts/queue-memory.sh bin/htexctl commands.txt
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,5p' "$0" >&2; exit 2; }
bin=$1 file=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cat >"$d/nopools.toml" <<'TOML'
[executor]
label = "queue-memory"
heartbeat_threshold = 300
[provider]
kind = "local"
init_blocks = 0
min_blocks = 0
max_blocks = 1
[strategy]
kind = "none"
TOML
"$bin" serve --config "$d/nopools.toml" --run-dir "$d/run" --log-level warn >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -f "$d/run/connection.json" ] && break; sleep 0.1; done
start=$(date +%s.%N)
client_rss=unknown
if [ -x /usr/bin/time ]; then
	/usr/bin/time -f %M -o "$d/client-kb" "$bin" submit --run-dir "$d/run" --file "$file" >/dev/null
	client_rss=$(awk '{printf "%.0f", $1 / 1024}' "$d/client-kb")
else
	"$bin" submit --run-dir "$d/run" --file "$file" >/dev/null
fi
end=$(date +%s.%N)
rss=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
"$bin" stop --run-dir "$d/run" >/dev/null 2>&1 || kill "$pid"
wait "$pid" || true
echo "submit_seconds=$(echo "$end - $start" | bc) daemon_peak_rss_mb=$rss client_peak_rss_mb=$client_rss"
