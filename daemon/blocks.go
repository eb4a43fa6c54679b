package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
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
	"github.com/htex/htex/wire"
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
			l.blocks = append(l.blocks, &block{id: b.ID, jobID: b.JobID, state: st.State, nodes: b.Nodes,
				submitted: b.SubmittedAt, dir: filepath.Dir(b.StderrPath), registered: true})
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
