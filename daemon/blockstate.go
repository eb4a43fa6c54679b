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
)

// poll reads the scheduler's state of live blocks.
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
	stats := l.ix.Stats()
	seen := map[int64]bool{}
	for _, p := range stats.Pools {
		seen[p.BlockID] = true
	}
	l.mu.Lock()
	type endedBlock struct {
		b                  *block
		failed, registered bool
		stderr             string
	}
	var ended []endedBlock
	var changed []*block // still live, in a new state: journal it
	for _, b := range l.blocks {
		if seen[b.id] {
			b.registered = true
			if b.state == providers.Pending {
				b.state = providers.Running
				changed = append(changed, b)
			}
		}
		st, ok := sts[b.jobID]
		if !ok || !b.ended.IsZero() {
			continue
		}
		if st.State == providers.Unknown && time.Since(b.submitted) < 30*time.Second {
			continue // schedulers may not list a job at once
		}
		if st.State != b.state {
			l.log.Info("block state", "block", b.id, "job", b.jobID, "from", b.state, "to", st.State, "message", st.Message)
			b.state = st.State
			if !st.State.Terminal() && st.State != providers.Unknown && !slices.Contains(changed, b) {
				changed = append(changed, b)
			}
		}
		if b.noteWaitReason(st) && !st.State.Terminal() && st.State != providers.Unknown && !slices.Contains(changed, b) {
			changed = append(changed, b)
		}
		if st.State.Terminal() || st.State == providers.Unknown {
			b.ended = time.Now()
			if st.Message != "" && !b.cancelAsked { // keep "cancelled: <why>"
				b.message = st.Message
			}
			// A block the daemon did not cancel failed when no pool of it
			// ever registered, or when the scheduler says it failed
			// (pools that crash after registering must not make the
			// scaler loop either).
			ended = append(ended, endedBlock{b: b, registered: b.registered,
				failed: !b.cancelAsked && (!b.registered || st.State == providers.Failed),
				stderr: filepath.Join(b.dir, "stderr")})
		}
	}
	l.mu.Unlock()
	for _, b := range changed {
		l.record(ctx, b, "")
	}
	for _, e := range ended {
		b := e.b
		switch {
		case e.failed && !e.registered:
			l.fail(b, fmt.Sprintf("block %d ended (%s) before any pool registered; see %s", b.id, reason(b), e.stderr))
		case e.failed:
			l.fail(b, fmt.Sprintf("block %d failed (%s) after its pools registered; see %s", b.id, reason(b), e.stderr))
		case e.registered:
			l.mu.Lock()
			l.failures = 0
			l.mu.Unlock()
		}
		l.record(ctx, b, "block_ended")
		id := b.id
		l.ix.Do(ctx, func(st *interchange.State) { st.BlockEnded(id, "block "+strconv.FormatInt(id, 10)+" ended") })
	}
}

// noteWaitReason keeps the scheduler's reason for a block that waits
// (pending or held: PBS's comment such as "Can Never Run: Not enough total
// nodes available", Slurm's reason) as the block's message, so that status
// shows why; the reason goes once the block runs. It reports whether the
// message changed.
func (b *block) noteWaitReason(st providers.Status) bool {
	waiting := st.State == providers.Pending || st.State == providers.Held
	switch {
	case b.cancelAsked || (!waiting && !b.waitReason):
		return false
	case waiting:
		changed := b.message != st.Message
		b.message, b.waitReason = st.Message, st.Message != ""
		return changed
	default: // no longer waiting: the reason is stale
		b.message, b.waitReason = "", false
		return true
	}
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

func (l *blockLoop) fail(b *block, msg string) {
	msg = oneLine(msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	b.message = msg
	l.failures++
	l.log.Error("block failed", "block", b.id, "failures_in_a_row", l.failures, "message", msg)
	if l.failures >= l.cfg.Strategy.MaxBlockFailures && l.halted == "" {
		l.halted = fmt.Sprintf("stopped submitting blocks after %d failed in a row (strategy.max_block_failures = %d); fix the cause and restart the daemon; last: %s",
			l.failures, l.cfg.Strategy.MaxBlockFailures, msg)
		l.log.Error(l.halted)
	}
}
