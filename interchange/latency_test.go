package interchange

import (
	"io"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// latencies records what the core tells the metrics.
type latencies struct {
	dispatched, finished []time.Duration
}

func (l *latencies) TaskDispatched(d time.Duration) { l.dispatched = append(l.dispatched, d) }
func (l *latencies) TaskFinished(_, _ string, d time.Duration) {
	l.finished = append(l.finished, d)
}
func (l *latencies) JournalCommitted(time.Duration, int) {}

// latencyCore is a core whose journal commits at once and answers reads
// from what it wrote.
type latencyCore struct {
	t       *testing.T
	s       *state
	written map[int64]journal.Task
}

func newLatencyCore(t *testing.T, obs Observer) *latencyCore {
	s := newState(config{HeartbeatThreshold: time.Hour, Observer: obs, DefaultRetries: 1},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &latencyCore{t: t, s: s, written: map[int64]journal.Task{}}
}

// settle runs the core's turns at now until it wants nothing more.
func (c *latencyCore) settle(now time.Time) {
	for range 100 {
		c.s.turn(now)
		c.s.takeOut()
		if b := c.s.takeBatch(); b != nil {
			for _, jt := range b.Tasks {
				c.written[jt.ID] = jt
			}
		}
		c.s.committed(now, nil)
		reads := c.s.takeReads()
		if len(reads) == 0 && !c.s.loadWanted {
			return
		}
		for _, q := range reads {
			var rows []journal.Row // ids after q.after, gaps skipped as the journal does
			for _, id := range slices.Sorted(maps.Keys(c.written)) {
				if id > int64(q.after) && len(rows) < q.limit {
					rows = append(rows, journal.Row{Task: c.written[id]})
				}
			}
			c.s.rowsRead(now, q, rows, false, nil)
		}
	}
	c.t.Fatal("the core did not settle")
}

func (c *latencyCore) submit(now time.Time, n int) {
	r := &wire.SubmitRequest{Last: true}
	for range n {
		r.Tasks = append(r.Tasks, &wire.TaskSpec{Argv: []string{"x"}, Retries: -1})
	}
	c.s.clientMsg(now, []byte("c"), enc(&wire.Envelope{Body: &wire.Envelope_Submit{Submit: r}}))
	c.settle(now)
}

func (c *latencyCore) pool(now time.Time, id string, slots int32) {
	c.s.poolMsg(now, []byte(id), enc(&wire.Envelope{Body: &wire.Envelope_Register{Register: &wire.Register{PoolId: id, Slots: slots}}}))
	c.settle(now)
}

func (c *latencyCore) results(now time.Time, pool string, ids ...uint64) {
	m := &wire.Results{}
	for _, id := range ids {
		m.Results = append(m.Results, &wire.Result{TaskId: id, Attempt: 1})
	}
	c.s.poolMsg(now, []byte(pool), enc(&wire.Envelope{Body: &wire.Envelope_Results{Results: m}}))
	c.settle(now)
}

func sorted(d []time.Duration) []time.Duration { return slices.Sorted(slices.Values(d)) }

// TestLatencyFromSubmission: the dispatch latency counts from a task's
// submission, once per attempt, and the end-to-end one to its final
// result, for tasks of several submits, a retry and restored tasks, with
// the submission times kept by runs of ids (submitted.go).
func TestLatencyFromSubmission(t *testing.T) {
	var l latencies
	c := newLatencyCore(t, &l)
	c.submit(t0, 2)                    // tasks 1, 2
	c.submit(t0.Add(time.Second), 1)   // task 3
	c.submit(t0.Add(2*time.Second), 1) // task 4
	c.pool(t0.Add(3*time.Second), "p1", 1)
	if want := []time.Duration{3 * time.Second}; !slices.Equal(l.dispatched, want) {
		t.Fatalf("dispatched %v, want %v", l.dispatched, want)
	}
	c.s.poolMsg(t0.Add(4*time.Second), []byte("p1"), enc(&wire.Envelope{Body: &wire.Envelope_Shutdown{Shutdown: &wire.Shutdown{Reason: "test"}}}))
	c.settle(t0.Add(4 * time.Second))
	c.pool(t0.Add(10*time.Second), "p2", 4) // task 1 again, and 2, 3, 4
	want := []time.Duration{3 * time.Second, 8 * time.Second, 9 * time.Second, 10 * time.Second, 10 * time.Second}
	if got := sorted(l.dispatched); !slices.Equal(got, want) {
		t.Fatalf("dispatched %v, want %v", got, want)
	}
	c.results(t0.Add(20*time.Second), "p2", 2, 3)
	if want := []time.Duration{19 * time.Second, 20 * time.Second}; !slices.Equal(sorted(l.finished), want) {
		t.Fatalf("finished %v, want %v", sorted(l.finished), want)
	}
	c.results(t0.Add(30*time.Second), "p2", 1, 4)
	if want := []time.Duration{19 * time.Second, 20 * time.Second, 28 * time.Second, 30 * time.Second}; !slices.Equal(sorted(l.finished), want) {
		t.Fatalf("finished %v, want %v", sorted(l.finished), want)
	}
	if n := c.s.tasks.submitted.len(); n != 0 {
		t.Errorf("%d runs of submission times kept with no task unfinished", n)
	}

	// A restart: unfinished tasks come back with their journal's times,
	// one unknown; tasks submitted after it go on from there.
	var r latencies
	d := newLatencyCore(t, &r)
	d.written = c.written
	heads := []journal.TaskHead{
		{ID: 5, JobID: 1, SubmittedAt: t0.Add(40 * time.Second)},
		{ID: 6, JobID: 1, SubmittedAt: t0.Add(40 * time.Second)},
		{ID: 8, JobID: 1},
		{ID: 9, JobID: 1, SubmittedAt: t0.Add(45 * time.Second)},
	}
	for _, h := range heads {
		d.written[h.ID] = journal.Task{ID: h.ID, JobID: h.JobID, Argv: []string{"x"}, SubmittedAt: h.SubmittedAt}
	}
	d.s.restore(restoreData{maxJob: 1, maxTask: 9, unfinished: heads,
		counts: []journal.JobCount{{JobID: 1, Total: 9}}}, t0.Add(50*time.Second))
	d.settle(t0.Add(50 * time.Second))
	d.submit(t0.Add(55*time.Second), 1) // task 10
	d.pool(t0.Add(60*time.Second), "p3", 8)
	// Task 8's time is unknown: no dispatch latency, as before.
	want = []time.Duration{5 * time.Second, 15 * time.Second, 20 * time.Second, 20 * time.Second}
	if got := sorted(r.dispatched); !slices.Equal(got, want) {
		t.Fatalf("after a restart, dispatched %v, want %v", got, want)
	}
	d.results(t0.Add(70*time.Second), "p3", 5, 6, 8, 9, 10)
	want = []time.Duration{0, 15 * time.Second, 25 * time.Second, 30 * time.Second, 30 * time.Second}
	if got := sorted(r.finished); !slices.Equal(got, want) {
		t.Fatalf("after a restart, finished %v, want %v", got, want)
	}
}
