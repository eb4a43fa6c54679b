package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/htex/htex/blockscript"
	"github.com/htex/htex/config"
	"github.com/htex/htex/interchange"
	"github.com/htex/htex/journal"
	"github.com/htex/htex/providers"
	"github.com/htex/htex/providers/local"
	"github.com/htex/htex/rundir"
	"github.com/htex/htex/scale"
)

// block is the daemon's record of one batch job.
type block struct {
	id          int64
	jobID       string
	state       providers.State
	nodes       int
	submitted   time.Time
	ended       time.Time
	registered  bool // a pool of this block has registered
	dir         string
	message     string
	waitReason  bool // message is the scheduler's reason for a pending or held block
	cancelAsked bool
	endAt       time.Time // the block's end (walltime) as its pools report it
	seenPools   bool      // the scaler saw pools of it in the interchange's stats
}

// blockLoop runs the scaler: it observes tasks and pools, decides, submits
// and cancels blocks, and follows their state. It implements
// interchange.BlockSource.
type blockLoop struct {
	adoptRecs []journal.Block // set by adopt, written by run (see recordLater)
	cfg       *config.Config
	opt       Options
	prov      providers.Provider
	jr        *journal.Journal
	log       *slog.Logger
	ix        *interchange.Interchange
	policy    scale.Policy

	mu       sync.Mutex
	blocks   []*block
	nextID   int64
	summary  string
	failures int
	halted   string
	first    bool
	spb      int

	decisions int       // scaler decisions made so far; summary is the last
	decidedAt time.Time // when the last one was made
	lastWork  time.Time // the last decision that saw queued or running tasks
	haltTold  bool      // the halt is in the journal
	gone      []int64   // blocks of the previous daemon that adopt found ended
}

func newBlockLoop(cfg *config.Config, opt Options, prov providers.Provider, jr *journal.Journal, log *slog.Logger) *blockLoop {
	p := cfg.Provider
	return &blockLoop{cfg: cfg, opt: opt, prov: prov, jr: jr, log: log, first: true, lastWork: time.Now(),
		policy: scale.Policy{Kind: cfg.Strategy.Kind, InitBlocks: *p.InitBlocks, MinBlocks: p.MinBlocks, MaxBlocks: *p.MaxBlocks,
			Parallelism: *p.Parallelism, MaxIdletime: cfg.Strategy.MaxIdletime.D(), NodesPerBlock: p.NodesPerBlock}}
}

func (l *blockLoop) record(ctx context.Context, b *block, event string) {
	rec := journal.Block{ID: b.id, JobID: b.jobID, Provider: l.prov.Name(), State: string(b.state), Nodes: b.nodes,
		SubmittedAt: b.submitted, UpdatedAt: time.Now(), EndedAt: b.ended, Message: b.message,
		StderrPath: filepath.Join(b.dir, "stderr"), ScriptPath: filepath.Join(b.dir, "submit.sh")}
	l.ix.Do(ctx, func(st *interchange.State) {
		st.RecordBlock(rec)
		if event != "" {
			st.Event(event, b.id, b.message)
		}
	})
}

// run is the scaler loop; it ends with ctx.
func (l *blockLoop) run(ctx context.Context) {
	recs := l.adoptRecs
	l.adoptRecs = nil
	l.ix.Do(ctx, func(st *interchange.State) {
		for _, r := range recs {
			st.RecordBlock(r)
		}
	})
	period := l.cfg.Strategy.Period.D()
	statusEvery := max(period, time.Second)
	var lastStatus time.Time
	t := time.NewTicker(min(period, time.Second))
	defer t.Stop()
	var lastDecide time.Time
	for {
		now := time.Now()
		if now.Sub(lastStatus) >= statusEvery {
			lastStatus = now
			l.poll(ctx)
		}
		if l.first || now.Sub(lastDecide) >= period {
			lastDecide = now
			l.step(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step makes one scaling decision and applies it.
func (l *blockLoop) step(ctx context.Context) {
	stats := l.ix.Stats()
	type agg struct {
		slots, busy, pools, draining int
		idle, end                    time.Time
		allIdle                      bool
	}
	per := map[int64]*agg{}
	for _, p := range stats.Pools {
		a := per[p.BlockID]
		if a == nil {
			a = &agg{allIdle: true}
			per[p.BlockID] = a
		}
		a.slots += p.Slots
		a.busy += p.Busy
		a.pools++
		if p.Draining {
			a.draining++
		}
		if p.IdleSince.IsZero() {
			a.allIdle = false
		} else if p.IdleSince.After(a.idle) {
			a.idle = p.IdleSince
		}
	}
	for _, p := range stats.Pools {
		if !p.BlockEnd.IsZero() {
			per[p.BlockID].end = p.BlockEnd
		}
	}
	now := time.Now()
	l.mu.Lock()
	in := scale.Input{Now: now, First: l.first, Tasks: stats.Queued + stats.Running, Halted: l.halted != ""}
	if in.Tasks > 0 {
		l.lastWork = now
	} else {
		in.NoWorkSince = l.lastWork
	}
	for _, b := range l.blocks {
		a := per[b.id]
		if a != nil {
			b.seenPools = true
			if !a.end.IsZero() {
				b.endAt = a.end
			}
		}
		if !b.ended.IsZero() || b.cancelAsked {
			continue
		}
		sb := scale.Block{ID: b.id, Pending: true, Submitted: b.submitted}
		switch {
		case a != nil:
			sb.Pending = false
			sb.Slots, sb.Busy = a.slots, a.busy
			sb.Draining = a.draining == a.pools
			if a.allIdle {
				sb.IdleSince = a.idle
			}
			l.spb = max(l.spb, a.slots)
		case b.seenPools:
			// Its pools were here and are gone (drained, or lost): the
			// block is ending, or its pools come back; either way it is
			// not pending, and not live.
			sb.Pending, sb.Draining = false, true
		}
		in.Blocks = append(in.Blocks, sb)
	}
	in.SlotsPerBlock = l.spb
	l.first = false
	prev := l.summary
	l.mu.Unlock()

	d := scale.Decide(l.policy, in)
	l.mu.Lock()
	l.summary, l.decidedAt = d.Summary, now
	l.decisions++
	n := l.decisions
	halt := l.halted
	tellHalt := halt != "" && !l.haltTold
	l.haltTold = l.haltTold || tellHalt
	l.mu.Unlock()
	// Every decision is logged with its numbers (debug when nothing changed
	// since the last one); those that act go to the journal as well.
	acts := d.Submit > 0 || len(d.Cancel) > 0
	if acts || d.Summary != prev {
		l.log.Info("scaler", "decision", n, "summary", d.Summary)
	} else {
		l.log.Debug("scaler", "decision", n, "summary", d.Summary)
	}
	if acts || tellHalt {
		l.ix.Do(ctx, func(st *interchange.State) {
			if acts {
				st.Event("scaler", 0, d.Summary)
			}
			if tellHalt {
				st.Event("scaler_halted", 0, halt)
			}
		})
	}
	for range d.Submit {
		if ctx.Err() != nil {
			return
		}
		l.submit(ctx)
	}
	if len(d.Cancel) > 0 {
		l.scaleIn(ctx, d.Cancel)
	}
}

// scaleIn cancels the idle blocks the scaler chose. The interchange checks
// again, on its own loop, that no pool of each holds a task, and drains
// them in the same step, so a task dispatched since the scaler looked is
// never killed: such a block is kept.
func (l *blockLoop) scaleIn(ctx context.Context, ids []int64) {
	var idle []int64
	l.ix.Do(ctx, func(st *interchange.State) {
		for _, id := range ids {
			if st.DrainIdleBlock(id) {
				idle = append(idle, id)
			}
		}
	})
	if len(idle) < len(ids) {
		l.log.Info("scale-in: kept blocks that took a task meanwhile", "chosen", ids, "cancelled", idle)
	}
	if len(idle) > 0 {
		l.cancel(ctx, idle, "idle")
	}
}

// submit renders, writes and submits one block.
func (l *blockLoop) submit(ctx context.Context) {
	l.mu.Lock()
	id := l.nextID
	l.nextID++
	l.mu.Unlock()
	dir := filepath.Join(l.opt.RunDir, rundir.BlocksDir, strconv.FormatInt(id, 10))
	b := &block{id: id, dir: dir, nodes: l.cfg.Provider.NodesPerBlock, submitted: time.Now(), state: providers.Pending}
	l.mu.Lock()
	l.blocks = append(l.blocks, b)
	l.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		l.fail(b, fmt.Sprintf("create block folder: %v", err))
		b.ended, b.state = time.Now(), providers.Failed
		l.record(ctx, b, "block_failed")
		return
	}
	prefix := blockscript.Quote(l.opt.Executable)
	if wc := l.cfg.Executor.WorkerCommand; wc != "" {
		prefix = wc
	}
	cmd := blockscript.WorkerCommand(prefix, l.opt.RunDir, id)
	script, err := blockscript.Render(l.cfg, blockscript.Params{BlockID: id, RunDir: l.opt.RunDir, BlockDir: dir, WorkerCommand: cmd})
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "submit.sh"), []byte(script), 0o700)
	}
	var jobID string
	if err == nil {
		jobID, err = l.prov.Submit(ctx, providers.Submission{BlockID: id, Name: blockscript.JobName(l.cfg.Executor.Label, id),
			Script: script, ScriptPath: filepath.Join(dir, "submit.sh"), Dir: dir, Nodes: b.nodes})
	}
	if err != nil {
		// The block's stderr holds the scheduler's full answer; its
		// message (status, daemon.log, the scaler line) names that file.
		stderr := filepath.Join(dir, "stderr")
		os.WriteFile(stderr, []byte(fmt.Sprintf("submit block %d: %v\n", id, err)), 0o600)
		l.fail(b, fmt.Sprintf("submit block %d failed: %v; see %s", id, err, stderr))
		l.mu.Lock()
		b.ended, b.state = time.Now(), providers.Failed
		l.mu.Unlock()
		l.record(ctx, b, "block_failed")
		return
	}
	l.mu.Lock()
	b.jobID = jobID
	l.mu.Unlock()
	l.log.Info("block submitted", "block", id, "job", jobID, "provider", l.prov.Name(), "nodes", b.nodes)
	l.record(ctx, b, "block_submitted")
}

// cancel cancels blocks (scale-in or stop).
func (l *blockLoop) cancel(ctx context.Context, ids []int64, why string) {
	l.mu.Lock()
	var jobIDs []string
	var bs []*block
	for _, b := range l.blocks {
		for _, id := range ids {
			if b.id == id && b.ended.IsZero() && b.jobID != "" {
				b.cancelAsked = true
				jobIDs = append(jobIDs, b.jobID)
				bs = append(bs, b)
			}
		}
	}
	l.mu.Unlock()
	if len(jobIDs) == 0 {
		return
	}
	for _, b := range bs {
		id := b.id
		l.ix.Do(ctx, func(st *interchange.State) { st.DrainBlock(id) })
	}
	if err := l.prov.Cancel(ctx, jobIDs); err != nil {
		l.log.Warn("cancel blocks", "err", err)
	}
	l.log.Info("blocks cancelled", "blocks", ids, "why", why)
	for _, b := range bs {
		l.mu.Lock()
		b.message = "cancelled: " + why
		l.mu.Unlock()
		l.record(ctx, b, "block_cancelled")
	}
}

func (l *blockLoop) cancelAll(ctx context.Context) {
	l.mu.Lock()
	var ids []int64
	for _, b := range l.blocks {
		if b.ended.IsZero() {
			ids = append(ids, b.id)
		}
	}
	l.mu.Unlock()
	l.cancel(ctx, ids, "daemon stopping")
}

func (l *blockLoop) wait() {
	if lp, ok := l.prov.(*local.Local); ok {
		done := make(chan struct{})
		go func() { lp.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}
}
