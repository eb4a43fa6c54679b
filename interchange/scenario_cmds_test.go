package interchange

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// t0 is the scenarios' epoch; times in scenarios are offsets from it.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// harness drives one core and keeps a model of the journal: what the
// committed batches wrote, so that results reads and restarts see it.
type harness struct {
	cfg  config
	s    *state
	now  time.Time
	jobs map[int64]journal.Job
	// the model journal
	tasks    map[int64]journal.Task
	results  map[int64]journal.Result
	attempts map[int64]int
	pools    map[string]journal.Pool
	blocks   *fakeBlocks
	inFlight *journal.Batch // handed out by write, not yet committed
}

type fakeBlocks struct{ statuses []*wire.BlockStatus }

func (f *fakeBlocks) BlockStatuses() []*wire.BlockStatus {
	var out []*wire.BlockStatus
	for _, b := range f.statuses {
		out = append(out, proto.Clone(b).(*wire.BlockStatus))
	}
	return out
}
func (f *fakeBlocks) ScalerSummary() string { return "fake scaler" }

func newHarness() *harness {
	h := &harness{now: t0, blocks: &fakeBlocks{}}
	h.cfg = config{Label: "test", HeartbeatThreshold: 5 * time.Second, Blocks: h.blocks}
	h.reset()
	return h
}

func (h *harness) reset() {
	h.s = newState(h.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.s.at(h.now)
	h.jobs = map[int64]journal.Job{}
	h.tasks = map[int64]journal.Task{}
	h.results = map[int64]journal.Result{}
	h.attempts = map[int64]int{}
	h.pools = map[string]journal.Pool{}
}

// offset parses "+5s" (from t0) or "5s".
func offset(v string) (time.Time, error) {
	d, err := time.ParseDuration(strings.TrimPrefix(v, "+"))
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want an offset like +5s", v)
	}
	return t0.Add(d), nil
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "+" + t.Sub(t0).String()
}

func (h *harness) run(c scenarioCase) (string, error) {
	a := parseArgs(c.args)
	var err error
	switch c.cmd {
	case "config": // a fresh core with these settings
		if h.cfg.HeartbeatThreshold, err = time.ParseDuration(a.str("heartbeat", "5s")); err != nil {
			return "", err
		}
		if h.cfg.DrainPeriod, err = time.ParseDuration(a.str("drain", "0s")); err != nil {
			return "", err
		}
		n, err := a.int("retries", 0)
		if err != nil {
			return "", err
		}
		h.cfg.DefaultRetries = int(n)
		keep, err := a.int("keep", 0)
		if err != nil {
			return "", err
		}
		batch, err := a.int("batch", 0)
		if err != nil {
			return "", err
		}
		h.cfg.KeepLoaded, h.cfg.LoadBatch = int(keep), int(batch)
		npb, err := a.int("nodes-per-block", 0)
		if err != nil {
			return "", err
		}
		h.cfg.MPI = MPISettings{}
		if npb > 0 {
			h.cfg.MPI = MPISettingsFor(int(npb), a.str("launcher", "srun"))
		}
		// shape=SLOTSxCPUS [shapegpus=N] [shapemem=SIZE]: the config's
		// pool shape (per slot), known before pools register
		h.cfg.PoolShape = PoolShape{}
		if v, ok := a.kv["shape"]; ok {
			ps, err := poolShapeArg(v, a)
			if err != nil {
				return "", err
			}
			h.cfg.PoolShape = ps
		}
		h.now = t0
		h.reset()
		return "", nil
	case "at":
		if len(a.rest) != 1 {
			return "", fmt.Errorf("at +DURATION")
		}
		t, err := offset(a.rest[0])
		if err != nil {
			return "", err
		}
		if t.Before(h.now) {
			return "", fmt.Errorf("at %s: time goes back", a.rest[0])
		}
		h.now = t
		return "", nil
	case "turn":
		h.s.turn(h.now)
	case "commit", "commit-fail":
		return h.commit(c.cmd == "commit-fail")
	case "write": // hand out the batch; commit or commit-fail ends it
		if h.inFlight = h.s.takeBatch(); h.inFlight == nil {
			return "nothing to write\n", nil
		}
		var b strings.Builder
		describeBatch(&b, h.inFlight)
		return b.String(), nil
	case "journal-failing": // the batch in flight fails for now: disk full
		h.s.journalFailing(h.now, &journal.WriteError{Path: "htex.db", Retryable: true, Full: true,
			Err: fmt.Errorf("no space left on device")})
	case "read":
		for _, q := range h.s.takeReads() {
			rows, more := h.rows(q), false
			if !q.load && len(rows) > q.limit { // a results page: limit rows and whether more follow
				rows, more = rows[:q.limit], true
			}
			h.s.rowsRead(h.now, q, rows, more, nil)
		}
	case "restart":
		h.restart()
	case "forget-blocks": // blocks that ended while no daemon ran
		var bs []int64
		for _, x := range a.rest {
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return "", err
			}
			bs = append(bs, n)
		}
		h.s.forgetBlocks(bs, h.now)
	case "state":
		return h.dump(), nil
	case "blocks": // the fake block source's blocks: id:state ...
		h.blocks.statuses = nil
		for _, b := range a.rest {
			id, st, _ := strings.Cut(b, ":")
			n, _ := strconv.ParseInt(id, 10, 64)
			h.blocks.statuses = append(h.blocks.statuses, &wire.BlockStatus{Id: n, State: st})
		}
		return "", nil
	default:
		if f := poolCmds[c.cmd]; f != nil {
			if len(a.rest) < 1 {
				return "", fmt.Errorf("%s POOL ...", c.cmd)
			}
			m, err := f(h, a)
			if err != nil {
				return "", err
			}
			h.s.poolMsg(h.now, []byte(a.rest[0]), m)
			break
		}
		if f := clientCmds[c.cmd]; f != nil {
			m, err := f(h, a, c.input)
			if err != nil {
				return "", err
			}
			h.s.clientMsg(h.now, []byte(a.str("client", "c1")), m)
			break
		}
		if f := daemonCmds[c.cmd]; f != nil {
			h.s.at(h.now)
			if err := f(&State{s: h.s}, a); err == errBusy {
				return err.Error() + "\n" + h.actions(), nil
			} else if err != nil {
				return "", err
			}
			break
		}
		return "", fmt.Errorf("unknown command %q", c.cmd)
	}
	return h.actions(), nil
}

// actions formats what the core asked for since the last command.
func (h *harness) actions() string {
	var b strings.Builder
	for _, m := range h.s.takeOut() {
		who := "client"
		if m.to == toPool {
			who = "pool"
		}
		fmt.Fprintf(&b, "%s %s <- %s\n", who, m.id, describe(msgOf(m)))
	}
	for _, q := range h.s.reads {
		if q.load {
			fmt.Fprintf(&b, "read tasks after=%d limit=%d\n", q.after, q.limit)
			continue
		}
		fmt.Fprintf(&b, "read results job=%d after=%d limit=%d\n", q.jobID, q.after, q.limit)
	}
	for _, blk := range h.s.takeRegistered() {
		fmt.Fprintf(&b, "watcher: a pool of block %d registered\n", blk)
	}
	if h.s.stopRequested {
		b.WriteString("stop requested\n")
		h.s.stopRequested = false
	}
	return b.String()
}

func ids(xs []uint64) string {
	if len(xs) == 0 {
		return "-"
	}
	var s []string
	for _, x := range xs {
		s = append(s, strconv.FormatUint(x, 10))
	}
	return strings.Join(s, ",")
}

// describe is one line for a message the core sends.
func describe(m *wire.Envelope) string {
	switch b := m.Body.(type) {
	case *wire.Envelope_Tasks:
		var s []string
		for _, t := range b.Tasks.Tasks {
			x := strconv.FormatUint(t.Id, 10)
			if t.Attempt > 1 {
				x += "#" + strconv.Itoa(int(t.Attempt))
			}
			if len(t.MpiNodes) > 0 {
				x += fmt.Sprintf("[on %s x%d]", strings.Join(t.MpiNodes, ","), t.RanksPerNode)
			}
			if t.Slots > 0 {
				x += "[" + strconv.Itoa(int(t.Slots)) + " slot"
				if t.Slots != 1 {
					x += "s"
				}
				x += "]"
			}
			s = append(s, x)
		}
		return "tasks " + strings.Join(s, ",")
	case *wire.Envelope_HeartbeatReply:
		return "heartbeat-reply"
	case *wire.Envelope_CancelTasks:
		return "cancel " + ids(b.CancelTasks.Ids)
	case *wire.Envelope_ResultsAck:
		return "results-ack " + ids(b.ResultsAck.Seqs)
	case *wire.Envelope_Refuse:
		return "refuse: " + b.Refuse.Reason
	case *wire.Envelope_Reregister:
		return "reregister"
	case *wire.Envelope_Drain:
		return "drain"
	case *wire.Envelope_Shutdown:
		return "shutdown: " + b.Shutdown.Reason
	case *wire.Envelope_SubmitReply:
		r := b.SubmitReply
		return fmt.Sprintf("submit-reply #%d job=%d first=%d count=%d", m.RequestId, r.JobId, r.FirstTaskId, r.Count)
	case *wire.Envelope_Error:
		// protobuf-go puts a no-break space in its errors at random, so
		// that nobody matches them: a scenario must not either.
		return fmt.Sprintf("error #%d: %s", m.RequestId, strings.ReplaceAll(b.Error.Message, "\u00a0", " "))
	case *wire.Envelope_Ack:
		return fmt.Sprintf("ack #%d: %s", m.RequestId, b.Ack.Message)
	case *wire.Envelope_Progress:
		p := b.Progress
		var done []string
		for _, d := range p.Done {
			done = append(done, fmt.Sprintf("%d:%v", d.TaskId, d.Ok))
		}
		return fmt.Sprintf("progress job=%d total=%d succeeded=%d failed=%d unfinished=%d sealed=%v complete=%v done=[%s]",
			p.JobId, p.Total, p.Succeeded, p.Failed, p.Running, p.Sealed, p.Complete, strings.Join(done, " "))
	case *wire.Envelope_StatusReply:
		r := b.StatusReply
		s := fmt.Sprintf("status #%d jobs=%d queued=%d running=%d succeeded=%d failed=%d", m.RequestId, r.Jobs,
			r.Queued, r.Running, r.Succeeded, r.Failed)
		for _, p := range r.Pools {
			s += fmt.Sprintf(" pool=%s:%d/%d", p.Id, p.Busy, p.Slots)
			if p.Draining {
				s += ":draining"
			}
		}
		for _, bl := range r.Blocks {
			s += fmt.Sprintf(" block=%d:%s:%d/%d", bl.Id, bl.State, bl.Busy, bl.Slots)
		}
		for _, w := range r.Waiting {
			s += "\n  waiting: " + w
		}
		return s
	case *wire.Envelope_ResultsReply:
		var s []string
		for _, r := range b.ResultsReply.Results {
			x := fmt.Sprintf("%d:%s", r.TaskId, r.State)
			if r.ErrorKind != "" {
				x += ":" + r.ErrorKind
			}
			if r.Node != "" {
				x += "@" + r.Node
			}
			if r.Attempts > 0 {
				x += fmt.Sprintf("(%d)", r.Attempts)
			}
			s = append(s, x)
		}
		more := ""
		if b.ResultsReply.More {
			more = " more"
		}
		return fmt.Sprintf("results #%d [%s]%s", m.RequestId, strings.Join(s, " "), more)
	}
	return typeName(m)
}

// commit hands out the pending batch, records it in the model journal
// (unless it fails) and reports it with the actions of the commit.
func (h *harness) commit(fail bool) (string, error) {
	b, written := h.inFlight, h.inFlight != nil
	h.inFlight = nil
	if b == nil {
		b = h.s.takeBatch()
	}
	var out strings.Builder
	switch {
	case b == nil:
		out.WriteString("nothing to write\n")
	case written:
		out.WriteString("journal: the batch handed out by write\n")
		if !fail {
			h.record(b)
		}
	default:
		describeBatch(&out, b)
		if !fail {
			h.record(b)
		}
	}
	var err error
	if fail {
		err = fmt.Errorf("disk I/O error")
		out.WriteString("write failed\n")
	}
	h.s.committed(h.now, err)
	out.WriteString(h.actions())
	return out.String(), nil
}

func describeBatch(w io.Writer, b *journal.Batch) {
	for _, j := range b.Jobs {
		fmt.Fprintf(w, "journal: job %d %q\n", j.ID, j.Name)
	}
	var tasks []string
	for _, t := range b.Tasks {
		x := strconv.FormatInt(t.ID, 10)
		if t.Priority != 0 {
			x += fmt.Sprintf("(prio %d)", t.Priority)
		}
		tasks = append(tasks, x)
	}
	if len(tasks) > 0 {
		fmt.Fprintf(w, "journal: tasks %s\n", strings.Join(tasks, ","))
	}
	for _, r := range b.Results {
		fmt.Fprintf(w, "journal: result %d %s", r.TaskID, r.State)
		if r.ErrorKind != "" {
			fmt.Fprintf(w, " %s", r.ErrorKind)
		}
		fmt.Fprintf(w, " attempts=%d pool=%s\n", r.Attempts, r.PoolID)
	}
	for _, a := range b.Attempts {
		fmt.Fprintf(w, "journal: attempt %d#%d %s %s pool=%s\n", a.TaskID, a.Attempt, a.State, a.ErrorKind, a.PoolID)
	}
	for _, p := range b.Pools {
		what := "registered"
		if !p.LostAt.IsZero() {
			what = "lost"
		}
		fmt.Fprintf(w, "journal: pool %s block=%d %s\n", p.ID, p.BlockID, what)
	}
	for _, e := range b.Events {
		fmt.Fprintf(w, "journal: event %s", e.Kind)
		if e.PoolID != "" {
			fmt.Fprintf(w, " pool=%s", e.PoolID)
		}
		if e.Message != "" {
			fmt.Fprintf(w, " %q", e.Message)
		}
		fmt.Fprintln(w)
	}
}

// record applies a committed batch to the model journal.
func (h *harness) record(b *journal.Batch) {
	for _, j := range b.Jobs {
		h.jobs[j.ID] = j
	}
	for _, t := range b.Tasks {
		h.tasks[t.ID] = t
	}
	for _, r := range b.Results {
		h.results[r.TaskID] = r
	}
	for _, a := range b.Attempts {
		h.attempts[a.TaskID]++
	}
	for _, p := range b.Pools {
		h.pools[p.ID] = p
	}
}

// rows answers a results read from the model journal.
func (h *harness) rows(q readReq) []journal.Row {
	var keys []int64
	for id, t := range h.tasks {
		if id > int64(q.after) && (q.jobID == 0 || t.JobID == int64(q.jobID)) {
			keys = append(keys, id)
		}
	}
	slices.Sort(keys)
	var rows []journal.Row
	for _, id := range keys {
		if len(rows) == q.limit+1 {
			break
		}
		row := journal.Row{Task: h.tasks[id]}
		if r, ok := h.results[id]; ok {
			row.Result = &r
		}
		rows = append(rows, row)
	}
	return rows
}

// restart starts a new core on the model journal, as a daemon restarted
// on the same run directory does (Interchange.Restore).
func (h *harness) restart() {
	d := restoreData{attempts: map[int64]int{}}
	counts := map[int64]*journal.JobCount{}
	for id, j := range h.jobs {
		counts[id] = &journal.JobCount{JobID: id, Name: j.Name}
		d.maxJob = max(d.maxJob, id)
	}
	var keys []int64
	for id := range h.tasks {
		keys = append(keys, id)
	}
	slices.Sort(keys)
	for _, id := range keys {
		t := h.tasks[id]
		d.maxTask = max(d.maxTask, id)
		c := counts[t.JobID]
		c.Total++
		r, ok := h.results[id]
		switch {
		case !ok:
			d.unfinished = append(d.unfinished, journal.TaskHead{ID: t.ID, JobID: t.JobID, Timeout: t.Timeout,
				Retries: t.Retries, Priority: t.Priority, SubmittedAt: t.SubmittedAt, Cores: t.Cores, GPUs: t.GPUs,
				MemBytes: t.MemBytes, Nodes: t.Nodes, RanksPerNode: t.RanksPerNode})
			if n := h.attempts[id]; n > 0 {
				d.attempts[id] = n
			}
		case r.State == "succeeded":
			c.Succeeded++
		case r.State == "cancelled":
			c.Cancelled++
		default:
			c.Failed++
		}
	}
	for _, c := range counts {
		d.counts = append(d.counts, *c)
	}
	slices.SortFunc(d.counts, func(a, b journal.JobCount) int { return int(a.JobID - b.JobID) })
	for _, p := range h.pools {
		if p.LostAt.IsZero() {
			d.pools = append(d.pools, p)
		}
	}
	slices.SortFunc(d.pools, func(a, b journal.Pool) int { return strings.Compare(a.ID, b.ID) })
	jobs, tasks, results, attempts, pools := h.jobs, h.tasks, h.results, h.attempts, h.pools
	h.reset()
	h.jobs, h.tasks, h.results, h.attempts, h.pools = jobs, tasks, results, attempts, pools
	h.s.restore(d, h.now)
}

// dump is the core's state in short: queue, pools, hold.
func (h *harness) dump() string {
	var b strings.Builder
	s := h.s
	var queued []uint64
	s.tasks.each(func(t *task) {
		if t.state == stQueued {
			queued = append(queued, t.id)
		}
	})
	slices.Sort(queued)
	fmt.Fprintf(&b, "queued: %s\n", ids(queued))
	var spilled []uint64
	s.tasks.each(func(t *task) {
		if !t.fields().loaded() {
			spilled = append(spilled, t.id)
		}
	})
	if len(spilled) > 0 {
		slices.Sort(spilled)
		fmt.Fprintf(&b, "without encoding: %s (queued ones: %d)\n", ids(spilled), s.spilled)
	}
	var pools []string
	for id := range s.pools {
		pools = append(pools, id)
	}
	slices.Sort(pools)
	for _, id := range pools {
		p := s.pools[id]
		var run []uint64
		for tid := range p.running {
			run = append(run, tid)
		}
		slices.Sort(run)
		fmt.Fprintf(&b, "pool %s: block=%d slots=%d capacity=%d running=%s", p.id, p.reg.BlockId, p.reg.Slots, p.capacity, ids(run))
		if s.draining(p) {
			b.WriteString(" draining")
		}
		if !p.blockEnd.IsZero() {
			fmt.Fprintf(&b, " ends=%s", since(p.blockEnd))
		}
		if p.used != len(p.running) {
			fmt.Fprintf(&b, " used=%d", p.used)
		}
		if p.resv != nil {
			fmt.Fprintf(&b, " reserved-for=%d", p.resv.t.id)
		}
		if g := p.gang; g != nil {
			fmt.Fprintf(&b, " held-by=%d", g.t.id)
			if g.running {
				b.WriteString("(running)")
			}
		}
		b.WriteString("\n")
	}
	for _, g := range s.gangs.list {
		var pools []string
		for _, p := range g.pools {
			pools = append(pools, p.id)
		}
		fmt.Fprintf(&b, "gang %d: nodes=%d pools=%s running=%v", g.t.id, g.nodes, strings.Join(pools, ","), g.running)
		if g.lost != "" {
			fmt.Fprintf(&b, " lost=%q", g.lost)
		}
		b.WriteString("\n")
	}
	if n := s.snapshot(h.now).ExtraSlots; n != 0 {
		fmt.Fprintf(&b, "extra slots for the scaler: %d\n", n)
	}
	if len(s.waiting) > 0 {
		var w []string
		for _, x := range s.waiting {
			w = append(w, strconv.FormatUint(x.t.id, 10))
		}
		fmt.Fprintf(&b, "waiting: %s\n", strings.Join(w, ","))
	}
	if s.holding {
		var former []string
		for id := range s.former {
			former = append(former, id)
		}
		slices.Sort(former)
		fmt.Fprintf(&b, "holding %d restored tasks until %s for pools %s\n", len(s.restored), since(s.holdUntil),
			strings.Join(former, ","))
	}
	return b.String()
}

// msgOf is the message of a send, decoding a pre-encoded frame.
func msgOf(m send) *wire.Envelope {
	if m.raw == nil {
		return m.msg
	}
	e, err := wire.Decode(m.raw)
	if err != nil {
		panic(fmt.Sprintf("the core sent a frame that does not decode: %v", err))
	}
	return e
}
