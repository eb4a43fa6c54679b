#!/bin/bash
# test.sh: every test of htex. Formatting and vet, unit tests, fuzz seed
# corpora, and the integration tests: the real htexctl binary, real ZeroMQ
# and SQLite, real worker pools, the PBS emulator, a real four-node Slurm and
# a real four-node OpenPBS that this script starts on this machine (as root)
# and stops after, and the static dist/htexctl (built here) running a pool in
# an empty chroot.
# With CI=true nothing may skip: a missing prerequisite fails the run.
set -eu
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

slurm=--slurm
[ "$(id -u)" -eq 0 ] || slurm=
./scripts/install-deps.sh $slurm

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
# ./... leaves out testdata/: the PBS emulator's own unit tests are named.
go vet ./testdata/pbs-emulator/

echo "== static build (scripts/build-static.sh; cached after the first run)"
./scripts/build-static.sh

started_slurm= started_pbs=
stop_clusters() {
	[ -z "$started_pbs" ] || ./scripts/pbs-cluster.sh down
	[ -z "$started_slurm" ] || ./scripts/slurm-cluster.sh down
}
if [ "$(id -u)" -eq 0 ]; then
	echo "== starting a local four-node Slurm (scripts/slurm-cluster.sh up)"
	trap stop_clusters EXIT
	if ! ./scripts/slurm-cluster.sh status >/dev/null 2>&1; then
		./scripts/slurm-cluster.sh up
		started_slurm=1
	fi
	echo "== starting a local four-node OpenPBS (scripts/pbs-cluster.sh up; the first run builds it, minutes)"
	if ! ./scripts/pbs-cluster.sh status >/dev/null 2>&1; then
		./scripts/pbs-cluster.sh up
		started_pbs=1
	fi
else
	echo "== not root: the Slurm and OpenPBS integration tests will skip (they fail when CI=true)"
fi

echo "== go test -race ./... (unit and integration)"
go test -race -count=1 -timeout 40m ./... ./testdata/pbs-emulator/
echo "== all tests passed"
