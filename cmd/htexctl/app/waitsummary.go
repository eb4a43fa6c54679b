package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/htex/htex/client"
	"github.com/htex/htex/wire"
)

// waitSummary is what `wait` reports at the end, as one line or as JSON.
type waitSummary struct {
	JobID     uint64 `json:"job_id,omitempty"` // 0: every task of the daemon
	Total     int64  `json:"total"`
	Succeeded int64  `json:"succeeded"`
	Failed    int64  `json:"failed"` // failed and cancelled
	// FailedByKind counts the failed tasks by error kind (exit, signal,
	// timeout, spawn, manager_lost, cancelled).
	FailedByKind map[string]int64 `json:"failed_by_kind"`
	// Seconds is how long the wait lasted, Finished how many tasks ended
	// during it, and TasksPerSecond their rate.
	Seconds        float64 `json:"seconds"`
	Finished       int64   `json:"finished_while_waiting"`
	TasksPerSecond float64 `json:"tasks_per_second"`
}

func newWaitSummary(jobID uint64, total, succeeded, failed, doneAtStart int64, took time.Duration) waitSummary {
	s := waitSummary{JobID: jobID, Total: total, Succeeded: succeeded, Failed: failed, FailedByKind: map[string]int64{},
		Seconds: took.Seconds(), Finished: max(succeeded+failed-doneAtStart, 0)}
	if took > 0 {
		s.TasksPerSecond = float64(s.Finished) / took.Seconds()
	}
	return s
}

// Line is the one-line summary, e.g.
// "job 3: 990 succeeded, 10 failed of 1000 (exit 8, timeout 2); 1000 finished in 12.3 s, 81.3 tasks/s".
func (s waitSummary) Line() string {
	var b strings.Builder
	if s.JobID != 0 {
		fmt.Fprintf(&b, "job %d: ", s.JobID)
	} else {
		b.WriteString("all tasks done: ")
	}
	fmt.Fprintf(&b, "%d succeeded, %d failed of %d", s.Succeeded, s.Failed, s.Total)
	if len(s.FailedByKind) > 0 {
		kinds := make([]string, 0, len(s.FailedByKind))
		for k := range s.FailedByKind {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool {
			a, b := s.FailedByKind[kinds[i]], s.FailedByKind[kinds[j]]
			return a > b || a == b && kinds[i] < kinds[j]
		})
		for i, k := range kinds {
			kinds[i] = fmt.Sprintf("%s %d", k, s.FailedByKind[k])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(kinds, ", "))
	}
	if s.Finished == 0 {
		b.WriteString("; none finished while waiting")
	} else {
		fmt.Fprintf(&b, "; %d finished in %s, %s tasks/s", s.Finished, fmtSeconds(s.Seconds), fmtPerSecond(s.TasksPerSecond))
	}
	return b.String()
}

func fmtSeconds(s float64) string {
	if s >= 100 {
		return (time.Duration(s) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%.1f s", s)
}

func fmtPerSecond(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

// countFailures fills FailedByKind from the results of the job (0: of
// every job); it reads them only when some task failed.
func (s *waitSummary) countFailures(ctx context.Context, cl *client.Client) error {
	if s.Failed == 0 {
		return nil
	}
	return cl.Results(ctx, s.JobID, func(r *wire.TaskResult) error {
		switch r.State {
		case "succeeded", "queued", "running", "":
			return nil
		}
		k := r.ErrorKind
		if k == "" {
			k = r.State
		}
		s.FailedByKind[k]++
		return nil
	})
}

// print writes the summary to stdout, as a line or as JSON.
func (s waitSummary) print(asJSON bool) error {
	if asJSON {
		return json.NewEncoder(out).Encode(s)
	}
	_, err := fmt.Fprintln(out, s.Line())
	return err
}
