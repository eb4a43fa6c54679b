package interchange

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// TestSpilledTasksLoadFromJournal runs the core against a real journal
// with most tasks spilled: each dispatched task must carry the argv, env
// and time limit it was submitted with, read back through the reader.
func TestSpilledTasksLoadFromJournal(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	woken := make(chan struct{}, 1<<16)
	rd := newReader(j, func() { woken <- struct{}{} })
	defer rd.close()
	s := newState(config{HeartbeatThreshold: time.Hour, KeepLoaded: 10, LoadBatch: 7}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := t0
	s.poolMsg(now, []byte("p1"), enc(&wire.Envelope{Body: &wire.Envelope_Register{Register: &wire.Register{PoolId: "p1", Slots: 1000}}}))
	const n = 100
	r := &wire.SubmitRequest{Last: true}
	for i := range n {
		r.Tasks = append(r.Tasks, &wire.TaskSpec{Argv: []string{"./simulate", "--seed", fmt.Sprint(i)}, Env: []string{fmt.Sprintf("I=%d", i)},
			TimeoutMs: int64(1000 + i), Priority: int32(i % 3), ArrayIndex: int64(i)})
	}
	s.clientMsg(now, []byte("c"), enc(&wire.Envelope{Body: &wire.Envelope_Submit{Submit: r}}))
	if s.spilled != n-10 {
		t.Fatalf("%d tasks spilled, want %d", s.spilled, n-10)
	}
	var got []*wire.Task
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tasks dispatched", len(got), n)
		}
		s.turn(now)
		for _, m := range s.takeOut() {
			if tk, ok := msgOf(m).Body.(*wire.Envelope_Tasks); ok {
				got = append(got, tk.Tasks.Tasks...)
			}
		}
		if b := s.takeBatch(); b != nil {
			if err := j.Write(b); err != nil {
				t.Fatal(err)
			}
			s.committed(now, nil)
		}
		rd.start(s.takeReads())
		select {
		case <-woken:
		case <-time.After(10 * time.Millisecond):
		}
		for _, d := range rd.collect() {
			s.rowsRead(now, d.q, d.rows, d.more, d.err)
		}
	}
	seen := map[uint64]bool{}
	for _, tk := range got {
		i := int(tk.Id) - 1
		if seen[tk.Id] || i < 0 || i >= n {
			t.Fatalf("task %d dispatched twice or unknown", tk.Id)
		}
		seen[tk.Id] = true
		want := r.Tasks[i]
		if !slices.Equal(tk.Argv, want.Argv) || !slices.Equal(tk.Env, want.Env) || tk.TimeoutMs != want.TimeoutMs ||
			tk.ArrayIndex != want.ArrayIndex || tk.Attempt != 1 || tk.JobId != 1 {
			t.Fatalf("dispatched %v, submitted %v", tk, want)
		}
	}
	// Dispatch waits at a spilled task rather than pass it: the order is
	// priority, then id, as if nothing had been spilled.
	order := slices.Clone(got)
	slices.SortStableFunc(order, func(a, b *wire.Task) int {
		pa, pb := r.Tasks[a.Id-1].Priority, r.Tasks[b.Id-1].Priority
		if pa != pb {
			return int(pb - pa)
		}
		return int(a.Id) - int(b.Id)
	})
	for k := range got {
		if got[k].Id != order[k].Id {
			t.Fatalf("dispatch %d was task %d, want %d (priority order)", k, got[k].Id, order[k].Id)
		}
	}
	if s.spilled != 0 {
		t.Errorf("%d tasks still counted spilled", s.spilled)
	}
}
