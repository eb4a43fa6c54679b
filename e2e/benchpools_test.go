package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/htex/htex/internal/testenv"
)

// TestBenchSimulatedPools runs `htexctl bench --pools`: a daemon process,
// a process of simulated pools speaking the real protocol over ZeroMQ with
// CURVE, and the client. It checks that every pool registered and took
// part, and that the figures the JSON promises are there; it asserts no
// speed.
func TestBenchSimulatedPools(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.Binary(t)
	home := t.TempDir()
	stdout, stderr, code := testenv.RunBin(bin, append(os.Environ(), "HOME="+home, "TMPDIR="+home),
		"bench", "--mode", "noop", "--pools", "40", "--slots-per-pool", "4", "--prefetch", "2", "--tasks", "3000", "--json")
	if code != 0 {
		t.Fatalf("bench --pools: exit %d\n%s\n%s", code, stdout, testenv.Tail(stderr, 3000))
	}
	var r struct {
		Mode            string   `json:"mode"`
		Tasks           int      `json:"tasks"`
		Workers         int      `json:"workers"`
		TasksPerSecond  float64  `json:"tasks_per_second"`
		Encrypted       bool     `json:"encrypted"`
		Journal         bool     `json:"journal"`
		Pools           int      `json:"pools"`
		SlotsPerPool    int      `json:"slots_per_pool"`
		RegisterSeconds *float64 `json:"register_seconds"`
		DaemonRSSMB     float64  `json:"daemon_rss_mb"`
		StatusPolls     int      `json:"status_polls"`
		StatusP99ms     float64  `json:"status_p99_ms"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, stdout)
	}
	if r.Mode != "noop" || r.Tasks != 3000 || r.Pools != 40 || r.SlotsPerPool != 4 || r.Workers != 160 || !r.Encrypted || !r.Journal {
		t.Errorf("bench --pools 40 --slots-per-pool 4 --tasks 3000 reported %+v", r)
	}
	if r.TasksPerSecond <= 0 || r.DaemonRSSMB <= 0 {
		t.Errorf("tasks_per_second %v and daemon_rss_mb %v must be measured (> 0)", r.TasksPerSecond, r.DaemonRSSMB)
	}
	if r.StatusPolls > 0 && r.StatusP99ms <= 0 {
		t.Errorf("%d status polls with a p99 of %v ms", r.StatusPolls, r.StatusP99ms)
	}
	if r.RegisterSeconds == nil {
		t.Errorf("register_seconds missing from %s", stdout)
	}
	// Bad combinations are refused with the flag named.
	_, stderr, code = testenv.RunBin(bin, append(os.Environ(), "HOME="+home), "bench", "--mode", "exec", "--pools", "2", "--tasks", "10")
	if code == 0 || !strings.Contains(stderr, "--mode noop") {
		t.Errorf("bench --mode exec --pools 2: exit %d, stderr %q; want a refusal naming --mode noop", code, stderr)
	}
}
