package daemon

// The blockLoop's side of interchange.BlockSource: what status shows of
// the blocks and the scaler, and a pool's registration.

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/htex/htex/wire"
)

// PoolRegistered implements interchange.PoolWatcher: it marks the block
// started the moment one of its pools registers.
func (l *blockLoop) PoolRegistered(blockID int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.blocks {
		if b.id == blockID {
			b.registered = true
		}
	}
}

// BlockStatuses implements interchange.BlockSource.
func (l *blockLoop) BlockStatuses() []*wire.BlockStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*wire.BlockStatus
	for _, b := range l.blocks {
		if !b.ended.IsZero() && time.Since(b.ended) > 10*time.Minute && b.message == "" {
			continue
		}
		bs := &wire.BlockStatus{Id: b.id, JobId: b.jobID, State: string(b.state), Nodes: int32(b.nodes),
			Message: b.message, StderrPath: filepath.Join(b.dir, "stderr")}
		if !b.endAt.IsZero() {
			bs.EndUnixMs = b.endAt.UnixMilli()
		}
		if !b.ended.IsZero() && !b.state.Terminal() {
			bs.State = "ended"
		}
		out = append(out, bs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// ScalerSummary implements interchange.BlockSource.
// The form is "decision #N at HH:MM:SS: <summary>", after the reason the
// daemon stopped submitting blocks, if it did.
func (l *blockLoop) ScalerSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ""
	if l.decisions > 0 {
		s = fmt.Sprintf("decision #%d at %s: %s", l.decisions, l.decidedAt.Format(time.TimeOnly), l.summary)
	}
	if l.halted != "" {
		return l.halted + " | " + s
	}
	return s
}
