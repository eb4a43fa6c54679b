package scale

// What an ended block means for the failed-block limit, when a pending
// block has waited too long, and when a halted scaler resumes.
//
// The limit (strategy.max_block_failures) is about blocks that never
// become useful: a script the scheduler refuses, a job that ends before
// any pool registers, pools that register and die before running a task,
// a block pending past strategy.max_pending. A block that ran tasks is
// not a start failure, however it ended (its pools lost contact for a
// while and gave up, its node died): it ends the streak. A preempted
// block is the scheduler's choice, not a failure: it neither counts nor
// ends the streak; its tasks run again and the scaler asks for a new
// block as for any block that ended.

import "time"

// EndKind is how an ended block counts toward max_block_failures.
type EndKind int

const (
	// EndNeutral does not count and does not end a streak: cancelled by
	// the daemon (scale-in, stop), or its pools registered and it ended
	// without a failure before any task came.
	EndNeutral EndKind = iota
	// EndUseful ran tasks: the failure streak is over.
	EndUseful
	// EndStartFailure never became useful: it counts.
	EndStartFailure
	// EndPreempted was preempted by the scheduler: neutral.
	EndPreempted
)

func (k EndKind) String() string {
	return [...]string{"neutral", "useful", "start failure", "preempted"}[k]
}

// Ended is what the daemon knows of a block that ended.
type Ended struct {
	Preempted       bool // the scheduler says so (Slurm PR/PREEMPTED, a PBS requeue)
	PendingTooLong  bool // the daemon cancelled it for max_pending
	CancelledByUs   bool // the daemon cancelled it for another reason (idle, stop)
	Registered      bool // a pool of it registered
	RanTasks        bool // a pool of it finished or held a task
	SchedulerFailed bool // the scheduler reports it failed (not completed, cancelled, timed out)
}

// ClassifyEnd says how an ended block counts, and why in a few words.
func ClassifyEnd(e Ended) (EndKind, string) {
	switch {
	case e.Preempted:
		return EndPreempted, "preempted by the scheduler; not counted as a failure"
	case e.PendingTooLong:
		return EndStartFailure, "pending longer than strategy.max_pending"
	case e.RanTasks:
		return EndUseful, "it ran tasks"
	case e.CancelledByUs:
		return EndNeutral, "cancelled by the daemon"
	case !e.Registered:
		return EndStartFailure, "ended before any pool registered"
	case e.SchedulerFailed:
		return EndStartFailure, "failed after its pools registered, before running a task"
	}
	return EndNeutral, "ended before any task came"
}

// Waiting is a block the daemon submitted that has no registered pool
// and no cancel sent.
type Waiting struct {
	ID    int64
	Since time.Time // submitted, or requeued by the scheduler
}

// PendingTooLong returns the waiting blocks pending for maxPending or
// longer; none when maxPending is 0 (off).
func PendingTooLong(maxPending time.Duration, now time.Time, blocks []Waiting) []int64 {
	if maxPending <= 0 {
		return nil
	}
	var ids []int64
	for _, b := range blocks {
		if !b.Since.IsZero() && now.Sub(b.Since) >= maxPending {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

// BreakerPolicy holds the failed-block limit and the back-off after it.
type BreakerPolicy struct {
	MaxFailures int           // strategy.max_block_failures
	Backoff     time.Duration // strategy.failure_backoff: the first halt's length
}

// maxBackoffFactor caps the doubling of the back-off after halts in a row.
const maxBackoffFactor = 8

// Breaker is the failed-block limit's state: a circuit breaker. After
// MaxFailures start failures in a row the scaler halts (submits nothing);
// after the back-off it resumes on probation: one more start failure
// halts it again, for twice as long (at most 8 × Backoff). A useful
// block resets it.
type Breaker struct {
	Failures int       // start failures in a row
	Halts    int       // halts since the last useful block
	HaltedAt time.Time // zero when not halted
}

// Halted reports whether the scaler must submit nothing.
func (b Breaker) Halted() bool { return !b.HaltedAt.IsZero() }

// ResumeAt is when a halted breaker resumes.
func (b Breaker) ResumeAt(p BreakerPolicy) time.Time {
	if !b.Halted() {
		return time.Time{}
	}
	f := 1 << min(max(b.Halts-1, 0), 3) // 1, 2, 4, 8
	return b.HaltedAt.Add(time.Duration(min(f, maxBackoffFactor)) * p.Backoff)
}

// Record returns the breaker after a block ended as kind at now, and
// whether this end halted it.
func (b Breaker) Record(p BreakerPolicy, kind EndKind, now time.Time) (Breaker, bool) {
	switch kind {
	case EndUseful:
		return Breaker{}, false
	case EndStartFailure:
		b.Failures++
		if !b.Halted() && b.Failures >= p.MaxFailures {
			b.Halts++
			b.HaltedAt = now
			return b, true
		}
	}
	return b, false
}

// Tick returns the breaker at now, and whether it resumed just now. A
// resumed breaker keeps its streak, already at the limit, so that one
// more start failure halts it again.
func (b Breaker) Tick(p BreakerPolicy, now time.Time) (Breaker, bool) {
	if !b.Halted() || now.Before(b.ResumeAt(p)) {
		return b, false
	}
	b.HaltedAt = time.Time{}
	return b, true
}
