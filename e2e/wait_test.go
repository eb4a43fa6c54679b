package e2e

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/htex/htex/internal/testenv"
)

// TestWaitSummary: wait ends with one line (counts, failures by kind, time,
// rate) and --json gives the same for scripts.
func TestWaitSummary(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--array", "1-8", "--timeout", "1s", "--", "sh", "-c", "[ {} -gt 2 ] || exit 2; [ {} -ne 3 ] || sleep 30; true")
	out, stderr, code := d.Run("wait", "--json", job)
	if code != 1 {
		t.Fatalf("wait --json: exit %d, want 1 (tasks failed): %s", code, stderr)
	}
	var s struct {
		JobID        uint64           `json:"job_id"`
		Total        int64            `json:"total"`
		Succeeded    int64            `json:"succeeded"`
		Failed       int64            `json:"failed"`
		FailedByKind map[string]int64 `json:"failed_by_kind"`
		Seconds      float64          `json:"seconds"`
		Finished     int64            `json:"finished_while_waiting"`
		Rate         float64          `json:"tasks_per_second"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("wait --json: %v\n%s", err, out)
	}
	if s.JobID == 0 || s.Total != 8 || s.Succeeded != 5 || s.Failed != 3 || s.FailedByKind["exit"] != 2 || s.FailedByKind["timeout"] != 1 || len(s.FailedByKind) != 2 {
		t.Errorf("wait --json: %+v, want 8 tasks, 5 succeeded, 3 failed: exit 2, timeout 1", s)
	}
	if s.Finished < 1 || s.Finished > 8 || s.Seconds <= 0 || s.Rate <= 0 {
		t.Errorf("wait --json: %d finished in %v s at %v/s: the timed-out task ended during the wait", s.Finished, s.Seconds, s.Rate)
	}
	out, _, code = d.Run("wait", job)
	want := "job " + job + ": 5 succeeded, 3 failed of 8 (exit 2, timeout 1); none finished while waiting\n"
	if code != 1 || out != want {
		t.Errorf("wait after the end: exit %d, %q; want exit 1, %q", code, out, want)
	}
	out, _, code = d.Run("wait")
	if code != 1 || !regexp.MustCompile(`^all tasks done: 5 succeeded, 3 failed of 8 \(exit 2, timeout 1\); none finished while waiting\n$`).MatchString(out) {
		t.Errorf("wait for every task: exit %d, %q", code, out)
	}
	ok := d.Submit("--array", "1-20", "--", "true")
	out, _, code = d.Run("wait", ok)
	if code != 0 || !regexp.MustCompile(`^job `+ok+`: 20 succeeded, 0 failed of 20; (\d+ finished in [0-9.]+ s, [0-9.]+ tasks/s|none finished while waiting)\n$`).MatchString(out) {
		t.Errorf("wait: exit %d, %q", code, out)
	}
}
