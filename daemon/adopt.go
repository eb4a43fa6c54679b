package daemon

// Adoption: a restarted daemon takes over the blocks that its predecessor
// left running, instead of submitting new ones.

import (
	"context"
	"path/filepath"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/providers"
	"github.com/htex/htex/providers/local"
)

// adopt takes over the blocks an earlier daemon left running.
func (l *blockLoop) adopt(ctx context.Context) error {
	_, _, maxBlock, err := l.jr.MaxIDs()
	if err != nil {
		return err
	}
	l.nextID = maxBlock + 1
	prev, err := l.jr.Blocks(true)
	if err != nil {
		return err
	}
	if len(prev) == 0 {
		return nil
	}
	var ids []string
	for _, b := range prev {
		if b.JobID != "" {
			ids = append(ids, b.JobID)
		}
		if lp, ok := l.prov.(*local.Local); ok {
			lp.Adopt(b.JobID, filepath.Dir(b.StderrPath))
		}
	}
	sts, err := l.prov.Status(ctx, ids)
	if err != nil {
		// Treating them as ended would submit new blocks beside them and
		// leave them running untracked: follow them until poll knows.
		l.log.Warn("cannot read the state of the previous run's blocks yet; adopting them until the scheduler answers", "err", err)
	}
	now := time.Now()
	for _, b := range prev {
		st, ok := sts[b.JobID]
		if err != nil && b.JobID != "" {
			st, ok = providers.Status{State: providers.Pending}, true
		}
		rec := journal.Block{ID: b.ID, JobID: b.JobID, Provider: b.Provider, Nodes: b.Nodes, SubmittedAt: b.SubmittedAt,
			UpdatedAt: now, StderrPath: b.StderrPath, ScriptPath: b.ScriptPath}
		if ok && !st.State.Terminal() && st.State != providers.Unknown {
			l.blocks = append(l.blocks, &block{id: b.ID, jobID: b.JobID, state: st.State, sched: st.State, nodes: b.Nodes,
				submitted: b.SubmittedAt, pendingSince: b.SubmittedAt, dir: filepath.Dir(b.StderrPath), registered: true})
			l.log.Info("adopted a running block of the previous daemon", "block", b.ID, "job", b.JobID, "state", st.State)
			l.first = false
			rec.State = string(st.State)
			l.recordLater(rec)
			continue
		}
		rec.State, rec.EndedAt = string(providers.Completed), now
		if ok {
			rec.State, rec.Message = string(st.State), st.Message
		}
		l.recordLater(rec)
		l.gone = append(l.gone, b.ID)
	}
	return nil
}

// recordLater keeps a record found by adopt, which runs before the
// interchange loop does, for run to write once the loop is up.
func (l *blockLoop) recordLater(b journal.Block) {
	l.adoptRecs = append(l.adoptRecs, b)
}
