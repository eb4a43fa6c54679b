package top

import (
	"reflect"
	"testing"

	"github.com/htex/htex/wire"
)

func TestScanResults(t *testing.T) {
	ok := func(id uint64) *wire.TaskResult { return &wire.TaskResult{TaskId: id, JobId: 1, State: "succeeded"} }
	bad := func(id uint64, stderr string) *wire.TaskResult {
		return &wire.TaskResult{TaskId: id, JobId: 1, State: "failed", ErrorKind: "exit", ExitCode: 2, Stderr: []byte(stderr)}
	}
	run := func(id uint64) *wire.TaskResult { return &wire.TaskResult{TaskId: id, JobId: 1, State: "running"} }
	for _, tc := range []struct {
		name       string
		cursor     uint64
		page       []*wire.TaskResult
		wantCursor uint64
		wantTasks  []uint64
	}{
		{"empty page keeps the cursor", 7, nil, 7, nil},
		{"all finished", 0, []*wire.TaskResult{ok(1), bad(2, "x"), ok(3)}, 3, []uint64{2}},
		{"stops before the first unfinished", 0, []*wire.TaskResult{ok(1), run(2), bad(3, "y")}, 1, []uint64{3}},
		{"unfinished first", 4, []*wire.TaskResult{run(5), ok(6)}, 4, nil},
		{"cancelled counts as a failure", 0, []*wire.TaskResult{{TaskId: 1, State: "cancelled", ErrorKind: "cancelled", Error: "cancelled before it ran"}}, 1, []uint64{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, fs := ScanResults(tc.cursor, tc.page)
			if cur != tc.wantCursor {
				t.Errorf("cursor %d, want %d", cur, tc.wantCursor)
			}
			var ids []uint64
			for _, f := range fs {
				ids = append(ids, f.TaskID)
			}
			if !reflect.DeepEqual(ids, tc.wantTasks) {
				t.Errorf("failures %v, want %v", ids, tc.wantTasks)
			}
		})
	}
}

func TestFailureOfFirstLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *wire.TaskResult
		want string
	}{
		{"first non-empty stderr line", &wire.TaskResult{State: "failed", Stderr: []byte("\n  boom  \nmore\n")}, "boom"},
		{"error when stderr is empty", &wire.TaskResult{State: "failed", Error: "time limit 1s reached"}, "time limit 1s reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := FailureOf(tc.r)
			if !ok || f.FirstLine != tc.want {
				t.Errorf("got %q (%v), want %q", f.FirstLine, ok, tc.want)
			}
		})
	}
	if _, ok := FailureOf(&wire.TaskResult{State: "succeeded"}); ok {
		t.Error("a success is not a failure")
	}
}

func TestWatchIDs(t *testing.T) {
	if got := WatchIDs(12, 3); !reflect.DeepEqual(got, []uint64{12, 11, 10}) {
		t.Errorf("WatchIDs(12, 3) = %v", got)
	}
	if got := WatchIDs(2, 10); !reflect.DeepEqual(got, []uint64{2, 1}) {
		t.Errorf("WatchIDs(2, 10) = %v", got)
	}
	if got := WatchIDs(0, 10); got != nil {
		t.Errorf("WatchIDs(0, 10) = %v", got)
	}
}
