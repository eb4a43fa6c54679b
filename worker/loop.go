package worker

import (
	"fmt"
	"time"

	"github.com/htex/htex/wire"
)

// loop is the memory of the pool's loop and its decisions, with no I/O:
// Run (pool.go) polls, receives, sends and talks to the slots; these
// methods say what to do, as pure functions of the state, the time and
// what arrived (loop_test.go drives them with tables). Owned by the
// loop's goroutine.
type loop struct {
	heartbeat   time.Duration // send a heartbeat this often
	threshold   time.Duration // interchange silent this long: exit
	drainPeriod time.Duration // drain this long before blockEnd
	blockEnd    time.Time     // zero = unknown
	mpiLauncher string        // how this node starts ranks ("" = it cannot)

	held     map[uint64]bool // dispatched to this pool and not yet reported
	batch    []*wire.Result  // results to send, coalesced up to holdUntil
	holdTill time.Time       // when batch must go out (zero: no batch)
	// Results held back in case the batch system is ending the pool (see
	// judge), in the order their tasks ended.
	withheld []*wire.Result

	lastContact time.Time // last message from the interchange
	lastBeat    time.Time // last heartbeat sent
	draining    bool      // take no new work; exit once all is reported
	noticeSent  bool      // the interchange has been told of the drain
	stopping    bool      // the interchange said shutdown
}

func newLoop(opt Options, now time.Time) *loop {
	return &loop{heartbeat: opt.Heartbeat, threshold: opt.Threshold, drainPeriod: opt.DrainPeriod,
		blockEnd: opt.BlockEnd, mpiLauncher: opt.MPILauncher,
		held: map[uint64]bool{}, lastContact: now, lastBeat: now}
}

// pollTimeout is how long the loop may wait for a message before a
// decision falls due: the next heartbeat, the end of a held result's
// signal grace, the end of coalescing, a drain's quick rounds, or the
// start of the drain period before the block's end.
func (l *loop) pollTimeout(now time.Time) time.Duration {
	timeout := l.lastBeat.Add(l.heartbeat).Sub(now)
	if len(l.withheld) > 0 {
		timeout = min(timeout, time.UnixMicro(l.withheld[0].EndUnixUs).Add(signalGrace).Sub(now))
	}
	if !l.holdTill.IsZero() { // zmq polls in whole milliseconds: round up
		timeout = min(timeout, l.holdTill.Sub(now).Truncate(time.Millisecond)+time.Millisecond)
	}
	if l.draining {
		timeout = min(timeout, 200*time.Millisecond)
	} else if !l.blockEnd.IsZero() {
		timeout = min(timeout, l.blockEnd.Add(-l.drainPeriod).Sub(now)+time.Millisecond)
	}
	return max(timeout, 0)
}

// heard notes a message from the interchange.
func (l *loop) heard(now time.Time) { l.lastContact = now }

// lost says, as a round of the loop starts and before its messages count,
// whether the interchange has been silent past the threshold. A pool that
// was itself stopped that long (SIGSTOP, a frozen node) has been dropped
// and its tasks given to other pools, whatever now waits on its socket: a
// heartbeat reply queued during the stall must not keep it, or its tasks
// would run twice at the same time.
func (l *loop) lost(now time.Time) error {
	if silent := now.Sub(l.lastContact); silent > l.threshold {
		return fmt.Errorf("no word from the interchange for %s (heartbeat_threshold): exiting", silent.Round(time.Second))
	}
	return nil
}

// admit takes the tasks of a Tasks message and returns those the slots
// must run, now held by the pool. A task that cannot start (no argv, a
// multi-node task this node cannot launch) and a noop task are answered
// at once, through the batch.
func (l *loop) admit(now time.Time, tasks []*wire.Task) (place []*wire.Task) {
	for _, t := range tasks {
		// argv, env and cwd as the exact bytes sent (wire/text.go)
		t.Argv, t.Env, t.Cwd = t.Args(), t.Envs(), t.Dir()
		t.ArgvRaw, t.EnvRaw, t.CwdRaw = nil, nil, nil
		if len(t.Argv) == 0 && !t.Noop {
			l.batch = append(l.batch, &wire.Result{TaskId: t.Id, ErrorKind: wire.ErrorKind_SPAWN, Error: "empty argv", ExitCode: -1})
			continue
		}
		if len(t.MpiNodes) > 0 {
			if _, err := mpiVars(l.mpiLauncher, t); err != nil {
				l.batch = append(l.batch, &wire.Result{TaskId: t.Id, Attempt: t.Attempt, ErrorKind: wire.ErrorKind_SPAWN,
					ExitCode: -1, Error: err.Error(), Nodes: t.MpiNodes})
				continue
			}
		}
		if t.Noop {
			us := now.UnixMicro()
			l.batch = append(l.batch, &wire.Result{TaskId: t.Id, StartUnixUs: us, EndUnixUs: us, Attempt: t.Attempt})
			continue
		}
		l.held[t.Id] = true
		place = append(place, t)
	}
	return place
}

// sort judges the results taken from the slots (terminated: when the pool
// got its SIGTERM, zero while it has not): reported ones join the batch,
// held ones wait for their signal grace, lost ones stay held and go with
// the pool. Held results whose grace has passed are reported: the pool
// outlived them, so the batch system did not end their tasks.
func (l *loop) sort(now, terminated time.Time, taken []*wire.Result) {
	for _, r := range taken {
		switch judge(r, now, terminated) {
		case hold:
			l.withheld = append(l.withheld, r)
		case report:
			l.reported(r)
		case lose:
		}
	}
	for len(l.withheld) > 0 && judge(l.withheld[0], now, terminated) == report {
		l.reported(l.withheld[0])
		l.withheld = l.withheld[1:]
	}
}

func (l *loop) reported(r *wire.Result) {
	delete(l.held, r.TaskId)
	l.batch = append(l.batch, r)
}

// batchPlan is what the loop does with its batch of results.
type batchPlan int

const (
	noBatch   batchPlan = iota // nothing to send
	holdBatch                  // hold it: every slot has work, more will come
	sendBatch                  // send it now
)

// coalesce decides whether the batch goes out now. Results wait up to
// resultCoalesce to travel together, only while every slot has a task to
// run (slotsFed) and the pool is neither stopping nor draining.
func (l *loop) coalesce(now time.Time, slotsFed bool) batchPlan {
	if len(l.batch) == 0 {
		return noBatch
	}
	if l.holdTill.IsZero() {
		l.holdTill = now.Add(resultCoalesce)
	}
	if slotsFed && now.Before(l.holdTill) && !l.stopping && !l.draining {
		return holdBatch
	}
	return sendBatch
}

// takeBatch returns the batch, which the caller sends or keeps in its
// outbox, and starts a new one.
func (l *loop) takeBatch() []*wire.Result {
	b := l.batch
	l.batch, l.holdTill = nil, time.Time{}
	return b
}

// startDrain makes the pool drain and reports whether the interchange must
// be told (once).
func (l *loop) startDrain() (notice bool) {
	l.draining = true
	notice = !l.noticeSent
	l.noticeSent = true
	return notice
}

// heldIDs lists the tasks the pool holds (heartbeat, registration).
func (l *loop) heldIDs() []uint64 {
	ids := make([]uint64, 0, len(l.held))
	for id := range l.held {
		ids = append(ids, id)
	}
	return ids
}

// tickPlan is what time calls for at the end of a round of the loop.
type tickPlan struct {
	drain  bool  // the block's end is near: start draining (and tell, if notice)
	notice bool  // send the drain notice
	beat   bool  // send a heartbeat (and resend unacknowledged results)
	exit   bool  // leave the loop, with err
	err    error // why, when it is a failure
}

// tick decides, after a round, whether to start draining, send a
// heartbeat, or leave: on shutdown, once drained with every result
// acknowledged (outboxEmpty), or when the interchange has been silent
// past the threshold.
func (l *loop) tick(now time.Time, outboxEmpty bool) (p tickPlan) {
	if l.stopping {
		return tickPlan{exit: true}
	}
	if !l.blockEnd.IsZero() && !l.draining && now.After(l.blockEnd.Add(-l.drainPeriod)) {
		p.drain = true
		p.notice = l.startDrain()
	}
	if l.draining && len(l.held) == 0 && outboxEmpty {
		p.exit = true
		return p
	}
	if now.Sub(l.lastBeat) >= l.heartbeat {
		l.lastBeat = now
		p.beat = true
	}
	if err := l.lost(now); err != nil {
		p.exit = true
		p.err = err
	}
	return p
}

// leave returns the results to report as the pool leaves on the batch
// system's SIGTERM (at terminated): those of tasks that ended before it
// struck. The tasks it ended stay held and the interchange runs them again
// with the pool's other tasks.
func (l *loop) leave(now, terminated time.Time, taken []*wire.Result) []*wire.Result {
	for _, r := range append(l.withheld, taken...) {
		if judge(r, now, terminated) == report {
			l.reported(r)
		}
	}
	l.withheld = nil
	return l.takeBatch()
}
