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

// block is the daemon's record of one batch job. Its fields are written
// and read under blockLoop.mu: the interchange's goroutine reads them for
// status (BlockStatuses, PoolRegistered) while the scaler's writes them.
type block struct {
	id          int64
	jobID       string
	state       providers.State // the daemon's view: running once a pool registered
	sched       providers.State // the scheduler's last answer
	nodes       int
	submitted   time.Time
	ended       time.Time
	registered  bool // a pool of this block has registered
	dir         string
	message     string
	cancelAsked bool
	endAt       time.Time // the block's end (walltime) as its pools report it
	seenPools   bool      // the scaler saw pools of it in the interchange's stats
	livePools   int       // its pools in the last stats
	ranTasks    bool      // a pool of it held or finished a task: it was useful

	pendingSince time.Time // submitted, or requeued by the scheduler
	changed      time.Time // when its state last changed
	reason       string    // the scheduler's reason while it waits
	reasonTold   string    // the reason last logged, so each is logged once
	stuck        bool      // the reason will not clear by itself
	tooLong      bool      // cancelled for strategy.max_pending
	requeues     int       // times the scheduler put it back in the queue
}

// queued reports whether the scheduler last said the block waits in its
// queue (pending or held).
func (b *block) queued() bool { return b.sched == providers.Pending || b.sched == providers.Held }

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
	breakerP  scale.BreakerPolicy
	pollP     scale.PollPolicy

	mu       sync.Mutex
	blocks   []*block
	nextID   int64
	summary  string
	breaker  scale.Breaker
	lastFail string // the last start failure's message
	halted   string // why the scaler submits nothing, while it does not
	first    bool
	spb      int

	decisions int       // scaler decisions made so far; summary is the last
	decidedAt time.Time // when the last one was made
	lastWork  time.Time // the last decision that saw queued or running tasks
	haltTold  bool      // the halt is in the journal
	gone      []int64   // blocks of the previous daemon that adopt found ended
	lastPoll  time.Time // the last scheduler status call
	pollWhy   string    // why the current poll interval is the fast one
}

func newBlockLoop(cfg *config.Config, opt Options, prov providers.Provider, jr *journal.Journal, log *slog.Logger) *blockLoop {
	p := cfg.Provider
	return &blockLoop{cfg: cfg, opt: opt, prov: prov, jr: jr, log: log, first: true, lastWork: time.Now(),
		policy: scale.Policy{Kind: cfg.Strategy.Kind, InitBlocks: *p.InitBlocks, MinBlocks: p.MinBlocks, MaxBlocks: *p.MaxBlocks,
			Parallelism: *p.Parallelism, MaxIdletime: cfg.Strategy.MaxIdletime.D(), NodesPerBlock: p.NodesPerBlock},
		breakerP: scale.BreakerPolicy{MaxFailures: cfg.Strategy.MaxBlockFailures, Backoff: cfg.Strategy.FailureBackoff.D()},
		pollP: scale.PollPolicy{Interval: p.StatusPollingInterval.D(), Fast: p.StatusPollingFast.D(),
			FastFor: pollFastFor(p.StatusPollingInterval.D(), p.StatusPollingFast.D())}}
}

// pollFastFor is how long a block counts as changing after it was
// submitted or changed state: two steady intervals, at most a minute
// (a block that waits longer is waiting, not changing), and at least two
// fast ones.
func pollFastFor(interval, fast time.Duration) time.Duration {
	return max(min(time.Minute, 2*interval), 2*fast)
}

func (l *blockLoop) record(ctx context.Context, b *block, event string) {
	l.mu.Lock()
	rec := journal.Block{ID: b.id, JobID: b.jobID, Provider: l.prov.Name(), State: string(b.state), Nodes: b.nodes,
		SubmittedAt: b.submitted, UpdatedAt: time.Now(), EndedAt: b.ended, Message: b.message,
		StderrPath: filepath.Join(b.dir, "stderr"), ScriptPath: filepath.Join(b.dir, "submit.sh")}
	l.mu.Unlock()
	l.ix.Do(ctx, func(st *interchange.State) {
		st.RecordBlock(rec)
		if event != "" {
			st.Event(event, rec.ID, rec.Message)
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
	t := time.NewTicker(min(period, time.Second))
	defer t.Stop()
	var lastDecide time.Time
	for {
		now := time.Now()
		if l.pollDue(now) {
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

// pollDue reports whether the scheduler is to be asked now: one call for
// all blocks every status_polling_interval, every status_polling_fast
// while a block changes state (scale.PollInterval).
func (l *blockLoop) pollDue(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pbs []scale.PollBlock
	for _, b := range l.blocks {
		if !b.ended.IsZero() || b.jobID == "" {
			continue
		}
		pbs = append(pbs, scale.PollBlock{Submitted: b.submitted, Changed: b.changed, Cancelling: b.cancelAsked,
			PoolsLost: b.seenPools && b.livePools == 0 && !b.queued(), Starting: b.livePools > 0 && b.queued()})
	}
	every, why := scale.PollInterval(l.pollP, now, pbs)
	if why != l.pollWhy {
		l.log.Debug("block status polling", "every", every, "fast_because", why)
		l.pollWhy = why
	}
	if now.Sub(l.lastPoll) < every {
		return false
	}
	l.lastPoll = now
	return true
}

// step makes one scaling decision and applies it.
func (l *blockLoop) step(ctx context.Context) {
	stats := l.ix.Stats()
	now := time.Now()
	l.tickBreaker(ctx, now)
	l.mu.Lock()
	// Tasks of a size count the slots they take (interchange Stats).
	in := scale.Input{Now: now, First: l.first, Tasks: stats.Queued + stats.Running + stats.ExtraSlots, Halted: l.breaker.Halted()}
	if in.Tasks > 0 {
		l.lastWork = now
	} else {
		in.NoWorkSince = l.lastWork
	}
	in.Blocks = l.observe(stats)
	in.SlotsPerBlock = l.spb
	l.first = false
	prev := l.summary
	l.mu.Unlock()

	d := scale.Decide(l.policy, in)
	l.mu.Lock()
	l.summary, l.decidedAt = d.Summary, now
	l.decisions++
	n := l.decisions
	l.opt.Metrics.ScalerDecided(d.Submit, len(d.Cancel))
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
	l.cancelOverdue(ctx, now)
}

// observe folds the interchange's pools into the blocks and returns the
// scaler's view of those that have not ended. Called with l.mu held.
func (l *blockLoop) observe(stats interchange.Stats) []scale.Block {
	type agg struct {
		slots, busy, pools, draining int
		idle, end                    time.Time
		allIdle, ran                 bool
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
		a.ran = a.ran || p.Busy > 0 || p.Done > 0
		if p.Draining {
			a.draining++
		}
		if p.IdleSince.IsZero() {
			a.allIdle = false
		} else if p.IdleSince.After(a.idle) {
			a.idle = p.IdleSince
		}
		if !p.BlockEnd.IsZero() {
			a.end = p.BlockEnd
		}
	}
	var out []scale.Block
	for _, b := range l.blocks {
		a := per[b.id]
		b.livePools = 0
		if a != nil {
			b.seenPools = true
			b.livePools = a.pools
			b.ranTasks = b.ranTasks || a.ran
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
		case b.seenPools && b.queued():
			// Its pools are gone and the scheduler has it in the queue
			// again (requeued): pending, as a new block would be.
			sb.Submitted = b.pendingSince
		case b.seenPools:
			// Its pools were here and are gone (drained, or lost): the
			// block is ending, or its pools come back; either way it is
			// not pending, and not live.
			sb.Pending, sb.Draining = false, true
		}
		out = append(out, sb)
	}
	return out
}

// cancelOverdue cancels the blocks pending longer than
// strategy.max_pending; each counts as a failed block when its end is seen.
func (l *blockLoop) cancelOverdue(ctx context.Context, now time.Time) {
	maxPending := l.cfg.Strategy.MaxPending.D()
	if maxPending <= 0 {
		return
	}
	l.mu.Lock()
	var waiting []scale.Waiting
	byID := map[int64]*block{}
	for _, b := range l.blocks {
		queued := b.queued() || (b.sched == "" || b.sched == providers.Unknown) && !b.registered
		if queued && b.ended.IsZero() && !b.cancelAsked && b.jobID != "" && b.livePools == 0 {
			waiting = append(waiting, scale.Waiting{ID: b.id, Since: b.pendingSince})
			byID[b.id] = b
		}
	}
	ids := scale.PendingTooLong(maxPending, now, waiting)
	whys := map[int64]string{}
	for _, id := range ids {
		b := byID[id]
		b.tooLong = true
		why := fmt.Sprintf("pending %s, longer than strategy.max_pending %s", now.Sub(b.pendingSince).Round(time.Second), maxPending)
		if b.reason != "" {
			why += " (" + l.prov.Name() + " says " + b.reason + ")"
		}
		whys[id] = why
	}
	l.mu.Unlock()
	for _, id := range ids {
		l.log.Warn("cancelling a block pending too long", "block", id, "why", whys[id])
		l.cancel(ctx, []int64{id}, whys[id])
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
	now := time.Now()
	b := &block{id: id, dir: dir, nodes: l.cfg.Provider.NodesPerBlock, submitted: now, pendingSince: now, state: providers.Pending}
	l.mu.Lock()
	l.blocks = append(l.blocks, b)
	l.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		l.mu.Lock()
		b.ended, b.state = time.Now(), providers.Failed
		l.mu.Unlock()
		l.startFailed(ctx, b, fmt.Sprintf("create block folder: %v", err))
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
		l.mu.Lock()
		b.ended, b.state = time.Now(), providers.Failed
		l.mu.Unlock()
		l.startFailed(ctx, b, fmt.Sprintf("submit block %d failed: %v; see %s", id, err, stderr))
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
