package daemon

// Following blocks: the provider's view of each block's state, and what
// a block that failed or ended tells the user.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/htex/htex/interchange"
	"github.com/htex/htex/providers"
	"github.com/htex/htex/scale"
)

// poll reads the scheduler's state of live blocks, in one call.
func (l *blockLoop) poll(ctx context.Context) {
	l.mu.Lock()
	var ids []string
	for _, b := range l.blocks {
		if b.ended.IsZero() && b.jobID != "" {
			ids = append(ids, b.jobID)
		}
	}
	l.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	sts, err := l.prov.Status(ctx, ids)
	if err != nil {
		l.log.Warn("block status", "err", err)
		return
	}
	seen := map[int64]bool{}
	for _, p := range l.ix.Stats().Pools {
		seen[p.BlockID] = true
	}
	now := time.Now()
	var changed, ended []*block // changed: still live, in a new state
	var ends []scale.Ended
	var notes []func(context.Context)
	l.mu.Lock()
	for _, b := range l.blocks {
		if seen[b.id] {
			b.registered = true
			if b.state == providers.Pending {
				b.state, b.changed = providers.Running, now
				changed = append(changed, b)
			}
		}
		st, ok := sts[b.jobID]
		if !ok || !b.ended.IsZero() {
			continue
		}
		if st.State == providers.Unknown && now.Sub(b.submitted) < 30*time.Second {
			continue // schedulers may not list a job at once
		}
		if note := l.follow(b, st, seen[b.id], now); note != nil {
			notes = append(notes, note)
		}
		if st.State != b.state && !st.State.Terminal() && st.State != providers.Unknown && !slices.Contains(changed, b) {
			changed = append(changed, b)
		}
		if st.State != b.state {
			l.log.Info("block state", "block", b.id, "job", b.jobID, "from", b.state, "to", st.State, "message", st.Message)
			b.state, b.changed = st.State, now
		}
		if st.State.Terminal() || st.State == providers.Unknown {
			b.ended = now
			if strings.HasPrefix(b.message, "waiting: ") {
				b.message = "" // the wait is over
			}
			if st.Message != "" && !b.cancelAsked { // keep "cancelled: <why>"
				b.message = st.Message
			}
			ended = append(ended, b)
			ends = append(ends, scale.Ended{Preempted: st.State == providers.Preempted, PendingTooLong: b.tooLong,
				CancelledByUs: b.cancelAsked, Registered: b.registered, RanTasks: b.ranTasks,
				SchedulerFailed: st.State == providers.Failed})
		}
	}
	l.mu.Unlock()
	for _, note := range notes {
		note(ctx)
	}
	for _, b := range changed {
		l.record(ctx, b, "")
	}
	for i, b := range ended {
		l.blockEnded(ctx, b, ends[i], now)
	}
}

// follow takes in the scheduler's answer for a block that has not ended:
// the reason it waits (shown by status, logged once each), or its return
// to the queue after it ran (a requeue: preempted, or a node failed). It
// returns what to log and journal once l.mu is released, if anything.
// Called with l.mu held.
func (l *blockLoop) follow(b *block, st providers.Status, poolsHere bool, now time.Time) func(context.Context) {
	waiting := st.State == providers.Pending || st.State == providers.Held
	prev := b.sched
	b.sched = st.State
	id, job := b.id, b.jobID
	switch {
	case waiting && prev == providers.Running:
		// Back in the queue after running (requeued after a preemption
		// or a node failure, or suspended): a new block in all but name.
		// Not a failure; its lost tasks run again elsewhere, and once
		// its pools are gone it counts as pending (observe) until they
		// come back.
		b.requeues++
		b.pendingSince = now
		b.reason, b.stuck, b.reasonTold = oneLine(st.Message), st.Stuck, oneLine(st.Message)
		b.message = fmt.Sprintf("back in the scheduler's queue after running (requeued or suspended; %d time(s)): %s",
			b.requeues, oneLine(st.Message))
		msg := b.message
		return func(ctx context.Context) {
			l.log.Warn("block back in the scheduler's queue after running; not counted as a failure", "block", id, "job", job, "reason", st.Message)
			l.ix.Do(ctx, func(s *interchange.State) { s.Event("block_requeued", id, msg) })
		}
	case waiting && !poolsHere && !b.cancelAsked:
		b.reason, b.stuck = oneLine(st.Message), st.Stuck
		if b.reason == "" {
			b.reason = string(st.State)
		}
		b.message = pendingMessage(l.prov.Name(), b.reason, b.stuck, l.cfg.Strategy.MaxPending.D())
		if b.reason == b.reasonTold {
			return nil
		}
		b.reasonTold = b.reason
		msg, stuck := b.message, b.stuck
		return func(ctx context.Context) {
			if stuck {
				l.log.Warn("block waits for a reason that will not clear by itself", "block", id, "job", job, "reason", msg)
			} else {
				l.log.Info("block waits", "block", id, "job", job, "reason", msg)
			}
			l.ix.Do(ctx, func(s *interchange.State) { s.Event("block_pending", id, msg) })
		}
	case st.State == providers.Running && b.reason != "":
		b.reason, b.stuck = "", false
		if strings.HasPrefix(b.message, "waiting: ") || strings.HasPrefix(b.message, "back in the scheduler's queue") {
			b.message = ""
		}
	}
	return nil
}

// pendingMessage is what status shows of a waiting block: the
// scheduler's own reason, and what happens next when it will not clear.
func pendingMessage(provider, reason string, stuck bool, maxPending time.Duration) string {
	msg := "waiting: " + provider + " says " + reason
	switch {
	case stuck && maxPending > 0:
		msg += fmt.Sprintf("; this will not clear by itself: the block is cancelled after strategy.max_pending %s", maxPending)
	case stuck:
		msg += "; this will not clear by itself: fix the request or release the job (strategy.max_pending cancels such blocks)"
	}
	return msg
}

// blockEnded accounts for a block that ended: a start failure counts
// toward max_block_failures, a block that ran tasks ends a failure streak,
// a preempted block does neither (scale.ClassifyEnd).
func (l *blockLoop) blockEnded(ctx context.Context, b *block, e scale.Ended, now time.Time) {
	kind, why := scale.ClassifyEnd(e)
	stderr := filepath.Join(b.dir, "stderr")
	l.mu.Lock()
	desc := reason(b)
	if kind == scale.EndPreempted {
		b.message = "preempted by the scheduler; its tasks run again and a new block is asked for"
	}
	l.mu.Unlock()
	switch kind {
	case scale.EndStartFailure:
		switch {
		case e.PendingTooLong:
			l.startFailed(ctx, b, fmt.Sprintf("block %d %s; see %s", b.id, b.message, stderr))
		case !e.Registered:
			l.startFailed(ctx, b, fmt.Sprintf("block %d ended (%s) before any pool registered; see %s", b.id, desc, stderr))
		default:
			l.startFailed(ctx, b, fmt.Sprintf("block %d failed (%s) after its pools registered, before running a task; see %s", b.id, desc, stderr))
		}
	case scale.EndUseful:
		if e.SchedulerFailed {
			l.log.Warn("block failed after running tasks; not a start failure", "block", b.id, "state", desc, "stderr", stderr)
		}
		l.recordEnd(ctx, kind, now)
	default:
		l.log.Info("block ended", "block", b.id, "state", desc, "counts_as", kind.String(), "why", why)
		l.recordEnd(ctx, kind, now)
	}
	l.record(ctx, b, "block_ended")
	id := b.id
	l.ix.Do(ctx, func(st *interchange.State) { st.BlockEnded(id, "block "+strconv.FormatInt(id, 10)+" ended") })
}

// reason is a block's end state with the scheduler's reason, if any.
func reason(b *block) string {
	if b.message != "" && b.message != string(b.state) {
		return string(b.state) + ": " + b.message
	}
	return string(b.state)
}

// oneLine joins the non-blank lines of a (scheduler's) message with "; ",
// so that status tables and the scaler line stay one line each.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// startFailed records a block that never became useful: its message,
// and one more failure toward max_block_failures.
func (l *blockLoop) startFailed(ctx context.Context, b *block, msg string) {
	msg = oneLine(msg)
	l.mu.Lock()
	b.message = msg
	l.lastFail = msg
	failures := l.breaker.Failures + 1
	l.mu.Unlock()
	l.log.Error("block failed", "block", b.id, "failures_in_a_row", failures, "message", msg)
	l.recordEnd(ctx, scale.EndStartFailure, time.Now())
}

// recordEnd moves the failed-block breaker; a halt is logged and shown by
// status with how the scaler resumes.
func (l *blockLoop) recordEnd(ctx context.Context, kind scale.EndKind, now time.Time) {
	l.mu.Lock()
	var halts bool
	l.breaker, halts = l.breaker.Record(l.breakerP, kind, now)
	if halts {
		l.halted = fmt.Sprintf("stopped submitting blocks after %d failed in a row (strategy.max_block_failures = %d); "+
			"resuming by itself at %s (after strategy.failure_backoff %s, doubled for each halt in a row), "+
			"or fix the cause and restart the daemon to resume now; last: %s",
			l.breaker.Failures, l.breakerP.MaxFailures, l.breaker.ResumeAt(l.breakerP).Format(time.TimeOnly),
			l.breaker.ResumeAt(l.breakerP).Sub(l.breaker.HaltedAt), l.lastFail)
		l.haltTold = false
	}
	halted := l.halted
	l.mu.Unlock()
	if halts {
		l.log.Error(halted)
	}
}

// tickBreaker resumes a halted scaler once its back-off has passed.
func (l *blockLoop) tickBreaker(ctx context.Context, now time.Time) {
	l.mu.Lock()
	var resumed bool
	l.breaker, resumed = l.breaker.Tick(l.breakerP, now)
	next := scale.Breaker{Halts: l.breaker.Halts + 1, HaltedAt: now}.ResumeAt(l.breakerP).Sub(now)
	if resumed {
		l.halted = ""
	}
	l.mu.Unlock()
	if resumed {
		msg := fmt.Sprintf("resuming block submission after the back-off; one more failed block halts it again, for %s", next)
		l.log.Warn(msg)
		l.ix.Do(ctx, func(st *interchange.State) { st.Event("scaler_resumed", 0, msg) })
	}
}
