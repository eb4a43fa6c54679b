// Package top is the model of `htexctl top`: it keeps the status snapshots
// it is given and renders them as panes (tasks and their rate, jobs with
// progress and ETA, blocks, pools, the scaler, the last failures), and it
// turns keys into requests (quit, select, cancel after confirmation,
// failures only). It is pure: no sockets, no clock, no terminal; the
// driver in cmd/htexctl/app polls the daemon through the client channel,
// feeds snapshots in as messages and carries out the cancel requests.
package top

import (
	"strings"
	"time"

	"github.com/htex/htex/wire"
)

// Job is the progress of one job, as a watch of the job reports it.
type Job struct {
	ID        uint64 `json:"id"`
	Total     int64  `json:"total"`
	Succeeded int64  `json:"succeeded"`
	Failed    int64  `json:"failed"` // failed and cancelled
	Complete  bool   `json:"complete"`
}

// Done is the number of finished tasks of the job.
func (j Job) Done() int64 { return j.Succeeded + j.Failed }

// Failure is one failed task: what the failures pane shows.
type Failure struct {
	TaskID    uint64 `json:"task_id"`
	JobID     uint64 `json:"job_id"`
	Kind      string `json:"kind"`
	ExitCode  int32  `json:"exit_code"`
	FirstLine string `json:"first_line"` // of stderr, else of the error message
}

// Snapshot is one poll of the daemon: the status reply (the same request
// as `htexctl status`), the progress of the jobs being watched, and the
// failures found since the previous snapshot.
type Snapshot struct {
	At       time.Time         `json:"at"`
	Status   *wire.StatusReply `json:"-"`
	Jobs     []Job             `json:"jobs"`
	Failures []Failure         `json:"failures"`
	Err      string            `json:"error,omitempty"` // the poll failed: shown, last good panes kept
}

// FailureOf turns a result into a Failure; ok is false for a result that
// is not a failure (succeeded, or not finished).
func FailureOf(r *wire.TaskResult) (Failure, bool) {
	switch r.State {
	case "succeeded", "queued", "running", "":
		return Failure{}, false
	}
	first := firstLine(string(r.Stderr))
	if first == "" {
		first = firstLine(r.Error)
	}
	kind := r.ErrorKind
	if kind == "" {
		kind = r.State
	}
	return Failure{TaskID: r.TaskId, JobID: r.JobId, Kind: kind, ExitCode: r.ExitCode, FirstLine: first}, true
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// ScanResults reads one page of a job's results (in task id order, from
// the task after cursor) and returns the failures in it and the cursor to
// ask from next time: just before the first unfinished task, so that no
// task is skipped. Failures past an unfinished task are returned too (and
// will be read again: the model keeps each task once).
func ScanResults(cursor uint64, page []*wire.TaskResult) (uint64, []Failure) {
	var out []Failure
	stuck := false
	for _, r := range page {
		if r.State == "queued" || r.State == "running" || r.State == "" {
			stuck = true
			continue
		}
		if !stuck {
			cursor = r.TaskId
		}
		if f, ok := FailureOf(r); ok {
			out = append(out, f)
		}
	}
	return cursor, out
}

// WatchIDs is the ids of the jobs to watch: the newest n of the daemon's
// jobs (job ids are numbered from 1 in submission order).
func WatchIDs(jobs int64, n int) []uint64 {
	var ids []uint64
	for id := jobs; id >= 1 && len(ids) < n; id-- {
		ids = append(ids, uint64(id))
	}
	return ids
}
