// Package e2e holds the end-to-end tests of htex: the real htexctl binary,
// real ZeroMQ, real SQLite, real worker pools, and (in slurm_test.go) a real
// Slurm cluster started on this machine by scripts/slurm-cluster.sh.
package e2e
