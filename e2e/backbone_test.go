package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/htex/htex/internal/testenv"
)

const localConfig = `
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 5
[provider]
kind = "local"
`

func TestSubmitWaitResults(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--array", "1-20", "--", "sh", "-c", "echo out {}; echo err {} >&2")
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, d.Log())
	}
	rs := d.Results(job)
	if len(rs) != 20 {
		t.Fatalf("got %d results, want 20", len(rs))
	}
	for _, r := range rs {
		if r.State != "succeeded" || r.ExitCode != 0 || r.Attempts != 1 || r.Node == "" {
			t.Errorf("task %d: %+v", r.TaskID, r)
		}
		want := "out " + strconv.FormatInt(*r.ArrayIndex, 10)
		if strings.TrimSpace(r.Stdout) != want || strings.TrimSpace(r.Stderr) != "err "+strconv.FormatInt(*r.ArrayIndex, 10) {
			t.Errorf("task %d: stdout %q stderr %q, want %q", r.TaskID, r.Stdout, r.Stderr, want)
		}
	}
}
