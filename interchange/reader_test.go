package interchange

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/htex/htex/journal"
)

// TestReaderAnswersEveryRead queues more reads than the reader's goroutines
// and channel hold, against a real journal, and checks that each is
// answered once with its own rows, while the loop never blocks on start.
func TestReaderAnswersEveryRead(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	b := &journal.Batch{Jobs: []journal.Job{{ID: 1, SubmittedAt: t0}}}
	for i := range 500 {
		b.Tasks = append(b.Tasks, journal.Task{ID: int64(i + 1), JobID: 1, ArrayIndex: -1, Argv: []string{"x"}, SubmittedAt: t0})
	}
	if err := j.Write(b); err != nil {
		t.Fatal(err)
	}
	woken := make(chan struct{}, 1000)
	r := newReader(j, func() { woken <- struct{}{} })
	var qs []readReq
	for i := range 100 {
		qs = append(qs, readReq{reqID: uint64(i), jobID: 1, after: uint64(i * 5), limit: 5})
	}
	r.start(qs) // must return at once, whatever the reader's queue holds
	got := map[uint64]readDone{}
	deadline := time.After(30 * time.Second)
	for len(got) < len(qs) {
		select {
		case <-woken:
		case <-deadline:
			t.Fatalf("%d of %d reads answered", len(got), len(qs))
		}
		r.start(nil)
		for _, d := range r.collect() {
			if _, dup := got[d.q.reqID]; dup {
				t.Fatalf("read %d answered twice", d.q.reqID)
			}
			got[d.q.reqID] = d
		}
	}
	r.close()
	for i, q := range qs {
		d := got[q.reqID]
		if d.err != nil {
			t.Fatalf("read %d: %v", i, d.err)
		}
		// a page of limit rows after q.after, and whether more follow
		want, more := min(q.limit, 500-int(q.after)), int(q.after)+q.limit < 500
		if len(d.rows) != want || d.rows[0].Task.ID != int64(q.after+1) || d.more != more {
			t.Fatalf("read %d (after %d): %d rows from %d, more %v; want %d from task %d, more %v", i, q.after,
				len(d.rows), d.rows[0].Task.ID, d.more, want, q.after+1, more)
		}
	}
}
