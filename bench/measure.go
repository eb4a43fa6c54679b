package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/htex/htex/client"
	"github.com/htex/htex/wire"
)

// measure submits n tasks pipelined (at most o.Window in flight) and
// collects the latency of each as the client sees it.
func measure(ctx context.Context, cl *client.Client, o Options, n int, progress func(int, int)) (*Report, error) {
	m := newMeter(cl, o, n)
	start := time.Now()
	if err := m.submitFirst(); err != nil {
		return nil, err
	}
	if err := cl.SendWatch(m.jobID, true); err != nil {
		return nil, err
	}
	lastRenew := time.Now()
	for m.received < n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := m.fill(); err != nil {
			return nil, err
		}
		msg, err := cl.Next(100 * time.Millisecond)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		if now.Sub(lastRenew) > time.Second {
			lastRenew = now
			cl.SendWatch(m.jobID, true)
		}
		if msg == nil {
			continue
		}
		if err := m.handle(msg, now); err != nil {
			return nil, err
		}
		if _, ok := msg.Body.(*wire.Envelope_Progress); ok && progress != nil {
			progress(m.received, n)
		}
	}
	el := time.Since(start)
	if len(m.lat) == 0 {
		return nil, errors.New("no task latency was measured")
	}
	slices.Sort(m.lat)
	pct := func(p float64) float64 {
		return float64(m.lat[min(len(m.lat)-1, int(p*float64(len(m.lat))))].Microseconds()) / 1000
	}
	return &Report{Mode: o.Mode, Tasks: n, Workers: o.Workers, Seconds: el.Seconds(),
		TasksPerSecond: float64(n) / el.Seconds(), P50ms: pct(0.50), P99ms: pct(0.99),
		Encrypted: o.Encrypted, Journal: !o.NoJournal, Window: o.Window, Cores: runtime.NumCPU(), Metrics: o.Metrics}, nil
}

// meter is the state of one measure: what was sent when, and the latency
// of each finished task. Owned by measure's goroutine.
type meter struct {
	cl     *client.Client
	window int
	n      int
	specs  []*wire.TaskSpec // one chunk of the same task

	jobID      uint64
	firstBatch time.Time            // when the first request went
	sentAt     map[uint64]time.Time // request id -> send time
	taskSent   map[uint64]time.Time // task id -> send time
	lat        []time.Duration

	submitted, inflight, received, pendingReplies int
}

func newMeter(cl *client.Client, o Options, n int) *meter {
	spec := &wire.TaskSpec{Argv: []string{"/bin/true"}, ArrayIndex: -1, Retries: -1, Noop: o.Mode == "noop"}
	specs := make([]*wire.TaskSpec, min(o.Window, 5000))
	for i := range specs {
		specs[i] = spec
	}
	return &meter{cl: cl, window: o.Window, n: n, specs: specs,
		sentAt: map[uint64]time.Time{}, taskSent: make(map[uint64]time.Time, n), lat: make([]time.Duration, 0, n)}
}

// submitFirst sends a request of one task and waits for its reply, which
// names the job. The watch that lists finished tasks (with their latency)
// starts after it, so a whole first chunk could finish unlisted on a fast
// pool.
func (m *meter) submitFirst() error {
	first := min(1, m.n)
	m.firstBatch = time.Now()
	reqID, err := m.cl.SendSubmit("bench", 0, m.specs[:first], first == m.n)
	if err != nil {
		return err
	}
	for m.jobID == 0 {
		msg, err := m.cl.Next(m.cl.Timeout)
		if err != nil {
			return err
		}
		if msg == nil {
			return errors.New("no reply to the first submission")
		}
		switch b := msg.Body.(type) {
		case *wire.Envelope_SubmitReply:
			if msg.RequestId == reqID {
				m.jobID = b.SubmitReply.JobId
			}
		case *wire.Envelope_Error:
			return errors.New(b.Error.Message)
		}
	}
	m.submitted, m.inflight = first, first
	return nil
}

// fill sends requests while the window and the number of unanswered
// requests allow.
func (m *meter) fill() error {
	chunk := len(m.specs)
	for m.submitted < m.n && m.inflight < m.window && m.pendingReplies < 4 {
		k := min(chunk, m.n-m.submitted, m.window-m.inflight)
		id, err := m.cl.SendSubmit("bench", m.jobID, m.specs[:k], m.submitted+k == m.n)
		if err != nil {
			return err
		}
		m.sentAt[id] = time.Now()
		m.submitted += k
		m.inflight += k
		m.pendingReplies++
	}
	return nil
}

// handle takes one message of the daemon, received at now.
func (m *meter) handle(msg *wire.Envelope, now time.Time) error {
	switch b := msg.Body.(type) {
	case *wire.Envelope_SubmitReply:
		m.pendingReplies--
		t := m.sentAt[msg.RequestId]
		delete(m.sentAt, msg.RequestId)
		for i := uint64(0); i < uint64(b.SubmitReply.Count); i++ {
			m.taskSent[b.SubmitReply.FirstTaskId+i] = t
		}
	case *wire.Envelope_Progress:
		// Latency comes from the finished tasks the watch reports; the
		// counts are authoritative for progress, because tasks that
		// finish before the watch is registered are counted but not
		// listed.
		for _, d := range b.Progress.Done {
			t, ok := m.taskSent[d.TaskId]
			if !ok {
				t = m.firstBatch // tasks of the first request
			}
			delete(m.taskSent, d.TaskId)
			m.lat = append(m.lat, now.Sub(t))
			if !d.Ok {
				return fmt.Errorf("task %d failed", d.TaskId)
			}
		}
		if b.Progress.Failed > 0 {
			return fmt.Errorf("%d tasks failed", b.Progress.Failed)
		}
		m.received = int(b.Progress.Succeeded)
		m.inflight = m.submitted - m.received
	case *wire.Envelope_Error:
		return errors.New(b.Error.Message)
	}
	return nil
}
