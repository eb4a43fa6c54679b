#!/bin/bash
# demo.sh: build htexctl, start a local daemon (sites/local.toml), submit
# sample tasks, wait for them, show their results, and stop the daemon.
set -eu
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
./scripts/install-deps.sh
mkdir -p bin
go build -o bin/htexctl ./cmd/htexctl

export HTEX_RUN_DIR=$PWD/.run/demo
rm -rf "$HTEX_RUN_DIR"
mkdir -p "$HTEX_RUN_DIR"
echo "== starting the daemon (run directory $HTEX_RUN_DIR)"
bin/htexctl serve --config sites/local.toml --log-level warn &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null' EXIT
for _ in $(seq 100); do
	[ -f "$HTEX_RUN_DIR/connection.json" ] && break
	kill -0 $daemon 2>/dev/null || { echo "demo: the daemon exited" >&2; exit 1; }
	sleep 0.1
done

echo "== plan: how a pool lays out this node"
bin/htexctl plan --config sites/local.toml
echo "== submitting 20 tasks (an array job) and 3 commands from stdin"
job=$(bin/htexctl submit --array 1-20 -- sh -c 'echo "task {} rank $HTEX_WORKER_RANK cpus $(grep Cpus_allowed_list /proc/self/status | cut -f2)"')
printf 'echo hello from a shell line\nhostname\nexit 3\n' | bin/htexctl submit --file - >/dev/null
bin/htexctl wait "$job"
echo "== results of job $job"
bin/htexctl results "$job" | head -12
echo "== status"
bin/htexctl wait || echo "(one sample command exits 3 on purpose: wait exits 1 when a task failed)"
bin/htexctl status
bin/htexctl stop
wait $daemon 2>/dev/null || true
trap - EXIT
echo "== done: the journal is $HTEX_RUN_DIR/htex.db (sqlite3 $HTEX_RUN_DIR/htex.db 'select * from task_status')"
