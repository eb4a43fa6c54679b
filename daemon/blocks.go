package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	endAt       time.Time
}

// blockLoop runs the scaler: it observes tasks and pools, decides, submits
// and cancels blocks, and follows their state. It implements
// interchange.BlockSource.
type blockLoop struct {
	cfg    *config.Config
	opt    Options
	prov   providers.Provider
	jr     *journal.Journal
	log    *slog.Logger
	ix     *interchange.Interchange
	policy scale.Policy

	mu       sync.Mutex
	blocks   []*block
	nextID   int64
	summary  string
	failures int
	halted   string
	first    bool
	spb      int
}

func newBlockLoop(cfg *config.Config, opt Options, prov providers.Provider, jr *journal.Journal, log *slog.Logger) *blockLoop {
	p := cfg.Provider
	return &blockLoop{cfg: cfg, opt: opt, prov: prov, jr: jr, log: log, first: true,
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
		l.log.Warn("cannot read the state of the previous run's blocks; treating them as ended", "err", err)
	}
	now := time.Now()
	for _, b := range prev {
		st, ok := sts[b.JobID]
		rec := journal.Block{ID: b.ID, JobID: b.JobID, Provider: b.Provider, Nodes: b.Nodes, SubmittedAt: b.SubmittedAt,
			UpdatedAt: now, StderrPath: b.StderrPath, ScriptPath: b.ScriptPath}
		if ok && !st.State.Terminal() && st.State != providers.Unknown {
			l.blocks = append(l.blocks, &block{id: b.ID, jobID: b.JobID, state: st.State, nodes: b.Nodes,
				submitted: b.SubmittedAt, dir: filepath.Dir(b.StderrPath), registered: true})
			l.log.Info("adopted a running block of the previous daemon", "block", b.ID, "job", b.JobID, "state", st.State)
			l.first = false
			continue
		}
		rec.State, rec.EndedAt = string(providers.Completed), now
		if ok {
			rec.State, rec.Message = string(st.State), st.Message
		}
		l.recordLater(rec)
	}
	return nil
}

var pendingRecords struct {
	sync.Mutex
	recs []journal.Block
}

func (l *blockLoop) recordLater(b journal.Block) {
	pendingRecords.Lock()
	pendingRecords.recs = append(pendingRecords.recs, b)
	pendingRecords.Unlock()
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
	pendingRecords.Lock()
	recs := pendingRecords.recs
	pendingRecords.recs = nil
	pendingRecords.Unlock()
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
	var ended []*block
	for _, b := range l.blocks {
		if seen[b.id] {
			b.registered = true
			if b.state == providers.Pending {
				b.state = providers.Running
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
		}
		if st.State.Terminal() || st.State == providers.Unknown {
			b.ended = time.Now()
			if st.Message != "" {
				b.message = st.Message
			}
			ended = append(ended, b)
		}
	}
	l.mu.Unlock()
	for _, b := range ended {
		failed := !b.registered && !b.cancelAsked
		if failed {
			l.fail(b, fmt.Sprintf("block %d ended (%s) before any pool registered; see %s", b.id, b.state, filepath.Join(b.dir, "stderr")))
		} else if b.registered {
			l.mu.Lock()
			l.failures = 0
			l.mu.Unlock()
		}
		l.record(ctx, b, "block_ended")
		id := b.id
		l.ix.Do(ctx, func(st *interchange.State) { st.BlockEnded(id, "block "+strconv.FormatInt(id, 10)+" ended") })
	}
}

func (l *blockLoop) fail(b *block, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b.message = msg
	l.failures++
	l.log.Error("block failed", "block", b.id, "failures_in_a_row", l.failures, "message", msg)
	if l.failures >= l.cfg.Strategy.MaxBlockFailures && l.halted == "" {
		l.halted = fmt.Sprintf("stopped submitting blocks after %d failed in a row; last: %s", l.failures, msg)
		l.log.Error(l.halted)
	}
}

// step makes one scaling decision and applies it.
func (l *blockLoop) step(ctx context.Context) {
	stats := l.ix.Stats()
	type agg struct {
		slots, busy, pools, draining int
		idle                         time.Time
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
	l.mu.Lock()
	in := scale.Input{Now: time.Now(), First: l.first, Tasks: stats.Queued + stats.Running, Halted: l.halted != ""}
	for _, b := range l.blocks {
		if !b.ended.IsZero() || b.cancelAsked {
			continue
		}
		sb := scale.Block{ID: b.id, Pending: true}
		if a := per[b.id]; a != nil {
			sb.Pending = false
			sb.Slots, sb.Busy = a.slots, a.busy
			sb.Draining = a.draining == a.pools
			if a.allIdle {
				sb.IdleSince = a.idle
			}
			l.spb = max(l.spb, a.slots)
		}
		in.Blocks = append(in.Blocks, sb)
	}
	in.SlotsPerBlock = l.spb
	l.first = false
	l.mu.Unlock()

	d := scale.Decide(l.policy, in)
	if d.Submit > 0 || len(d.Cancel) > 0 || d.Summary != l.summaryNoTime() {
		l.log.Info("scaler", "decision", d.Summary)
	}
	l.mu.Lock()
	l.summary = time.Now().Format(time.TimeOnly) + " " + d.Summary
	l.mu.Unlock()
	if d.Submit > 0 || len(d.Cancel) > 0 {
		l.ix.Do(ctx, func(st *interchange.State) { st.Event("scaler", 0, d.Summary) })
	}
	for range d.Submit {
		if ctx.Err() != nil {
			return
		}
		l.submit(ctx)
	}
	if len(d.Cancel) > 0 {
		l.cancel(ctx, d.Cancel, "idle")
	}
}

func (l *blockLoop) summaryNoTime() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := strings.IndexByte(l.summary, ' '); i >= 0 {
		return l.summary[i+1:]
	}
	return l.summary
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
		msg := fmt.Sprintf("submit block %d: %v", id, err)
		os.WriteFile(filepath.Join(dir, "stderr"), []byte(msg+"\n"), 0o600)
		l.fail(b, msg)
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
		b.message = "cancelled: " + why
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
		if !b.ended.IsZero() && !b.state.Terminal() {
			bs.State = "ended"
		}
		out = append(out, bs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// ScalerSummary implements interchange.BlockSource.
func (l *blockLoop) ScalerSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.halted != "" {
		return l.halted + " | " + l.summary
	}
	return l.summary
}
