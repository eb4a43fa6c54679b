package interchange

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/launcher"
	"github.com/htex/htex/wire"
)

// Multi-node (MPI) tasks. A task submitted with --nodes N runs on N whole
// nodes of one block: N pools of that block form its gang.
//
//   - When dispatch meets it at the head of the queue, the task leaves the
//     queue for the list of gangs (gangTake) and reserves N pools of one
//     block that may run it: registered, not draining, able to start MPI
//     ranks (Register.mpi_launcher), whose block end leaves room for its
//     time limit. It prefers the least busy pools, so that it starts
//     soon. A reserved pool takes no new task (wants); the tasks it runs
//     finish. Other pools keep taking ordinary tasks meanwhile.
//   - Without N such pools in one block now, the task waits in the list
//     and status says why (gangWaiting); every turn it tries again.
//   - Once its N pools are idle, the task goes to the first of them with
//     Task.mpi_nodes (the N nodes, that pool's first) and ranks_per_node.
//     Until its result comes, all N pools count as fully busy (used).
//   - Its result releases the pools to ordinary work (gangFinished); so
//     does its cancellation, while reserved or while running (once the
//     first pool has stopped it).
//   - A pool of a running gang that is lost (or whose block ends) takes
//     the task with it: the first pool is told to stop it, and when it
//     reports, the attempt counts as lost (manager_lost) and the task runs
//     again within its retry budget, never failed for it and never twice
//     at once (gangResult). The other pools are released at once. When
//     the first pool itself is lost, lose handles the task as any task of
//     a lost pool. A reservation whose pool is lost, or drains, is given
//     up and made anew.
//
// Gangs are few (each holds whole nodes), so the list is walked every
// turn; only the reservation of waiting gangs is bounded per turn.

// MPISettings say which multi-node tasks a run can start.
type MPISettings struct {
	// NodesPerBlock is provider.nodes_per_block: the most nodes of one
	// task. 0 = this daemon accepts no multi-node task.
	NodesPerBlock int
	// Launcher is provider.launcher, for messages.
	Launcher string
	// Kind is how the pools start ranks (launcher.MPIKind); "" = they
	// cannot, and Why says why.
	Kind, Why string
}

// MPISettingsFor returns the settings of a provider's nodes_per_block and
// launcher.
func MPISettingsFor(nodesPerBlock int, blockLauncher string) MPISettings {
	kind, why := launcher.MPIKind(blockLauncher)
	return MPISettings{NodesPerBlock: nodesPerBlock, Launcher: blockLauncher, Kind: kind, Why: why}
}

// gang is a multi-node task and the pools it holds.
type gang struct {
	t         *task
	nodes     int
	ranks     int32
	pools     []*pool // reserved; pools[0] runs the task
	running   bool    // sent to pools[0]
	lost      string  // a pool of the running gang was lost: why
	cancelled bool    // its job was cancelled while it ran
}

// gangSet holds the multi-node tasks out of the queue: waiting for a
// reservation, reserved, or running.
type gangSet struct {
	list   []*gang // in the order dispatch took them (priority, then id)
	byTask map[uint64]*gang
}

// maxReserveTries bounds the waiting gangs that try to reserve pools in
// one turn.
const maxReserveTries = 16

// maxWaitingLines bounds the lines of StatusReply.waiting.
const maxWaitingLines = 20

// used is how much of a pool's capacity its tasks take: every slot while
// it belongs to a running gang, else the slots its tasks are charged
// (sizes.go). Dispatch and status account a pool's load through it.
func (s *state) used(p *pool) int {
	if p.gang != nil && p.gang.running {
		return p.capacity
	}
	return p.used
}

// validateMPI checks the multi-node fields of a task spec (untrusted wire
// input).
func validateMPI(i int, t *wire.TaskSpec) error {
	if err := wire.CheckNodes(t); err != nil {
		return fmt.Errorf("task %d: %w", i, err)
	}
	return nil
}

// admitMPI refuses a multi-node task this run can never start.
func (s *state) admitMPI(i int, t *wire.TaskSpec) error {
	if t.Nodes <= 1 {
		return nil
	}
	m := s.cfg.MPI
	if m.NodesPerBlock == 0 {
		return fmt.Errorf("task %d: nodes %d: this daemon takes no multi-node tasks", i, t.Nodes)
	}
	if int(t.Nodes) > m.NodesPerBlock {
		msg := fmt.Sprintf("task %d: --nodes %d exceeds provider.nodes_per_block %d: a multi-node task runs on the nodes of one block", i, t.Nodes, m.NodesPerBlock)
		if m.Kind == "" {
			msg += "; and " + m.Why
		}
		return fmt.Errorf("%s", msg)
	}
	if m.Kind == "" {
		return fmt.Errorf("task %d: --nodes %d: %s; use launcher srun (Slurm), mpiexec (PALS, MPICH) or pbsdsh (PBS with MPICH)", i, t.Nodes, m.Why)
	}
	return nil
}

// gangTake takes a queued multi-node task out of the queue into the list
// of gangs and tries to reserve its pools at once. It reports whether t
// was such a task.
func (s *state) gangTake(t *task) bool {
	v := s.shapes.get(t.shape)
	if v.nodes < 2 {
		return false
	}
	g := &gang{t: t, nodes: int(v.nodes), ranks: max(v.ranks, 1)}
	gs := &s.gangs
	if gs.byTask == nil {
		gs.byTask = map[uint64]*gang{}
	}
	gs.list = append(gs.list, g)
	gs.byTask[t.id] = g
	s.reserve(g)
	return true
}

// gangStep runs at each dispatch: reserved gangs whose pools drained (or
// went) give them up, gangs whose pools are all idle start, and waiting
// gangs try to reserve.
func (s *state) gangStep() {
	tries := 0
	for _, g := range slices.Clone(s.gangs.list) {
		switch {
		case g.running:
		case g.pools == nil:
			if tries < maxReserveTries {
				tries++
				s.reserve(g)
			}
		case !s.reservationHolds(g):
			s.unreserveGang(g)
			s.reserve(g)
		case s.gangIdle(g):
			s.startGang(g)
		}
	}
}

// eligible reports whether a pool may be reserved for t.
func (s *state) eligible(p *pool, t *task) bool {
	return !p.gone && p.gang == nil && p.resv == nil && p.reg.MpiLauncher != "" && !s.draining(p) && s.fits(t, p)
}

// reserve reserves g's pools when one block has enough eligible pools: the
// block whose eligible pools run the fewest tasks, and its least busy
// pools.
func (s *state) reserve(g *gang) {
	byBlock := map[int64][]*pool{}
	var blocks []int64
	for _, p := range s.poolOrder {
		if !s.eligible(p, g.t) {
			continue
		}
		b := p.reg.BlockId
		if byBlock[b] == nil {
			blocks = append(blocks, b)
		}
		byBlock[b] = append(byBlock[b], p)
	}
	var best []*pool
	bestLoad := 0
	for _, b := range blocks {
		ps := byBlock[b]
		if len(ps) < g.nodes {
			continue
		}
		slices.SortStableFunc(ps, func(a, b *pool) int { return cmp.Compare(len(a.running), len(b.running)) })
		ps = ps[:g.nodes]
		load := 0
		for _, p := range ps {
			load += len(p.running)
		}
		if best == nil || load < bestLoad {
			best, bestLoad = ps, load
		}
	}
	if best == nil {
		return
	}
	g.pools = best
	for _, p := range best {
		p.gang = g
	}
	if s.gangIdle(g) {
		s.startGang(g)
	}
}

// reservationHolds reports whether every reserved pool may still run g.
func (s *state) reservationHolds(g *gang) bool {
	for _, p := range g.pools {
		if p.gone || s.draining(p) || !s.fits(g.t, p) {
			return false
		}
	}
	return true
}

// gangIdle reports whether no reserved pool runs a task.
func (s *state) gangIdle(g *gang) bool {
	for _, p := range g.pools {
		if len(p.running) > 0 {
			return false
		}
	}
	return true
}

// unreserveGang gives a waiting gang's pools back.
func (s *state) unreserveGang(g *gang) {
	pools := g.pools
	g.pools = nil
	s.releasePools(g, pools)
}

// releasePools gives pools held by g back to ordinary work.
func (s *state) releasePools(g *gang, pools []*pool) {
	for _, p := range pools {
		if p.gang != g {
			continue
		}
		p.gang = nil
		if len(p.running) == 0 && p.idleSince.IsZero() {
			p.idleSince = s.now
		}
		s.markReady(p)
	}
}

// dropGang forgets a gang and releases its pools.
func (s *state) dropGang(g *gang) {
	delete(s.gangs.byTask, g.t.id)
	if i := slices.Index(s.gangs.list, g); i >= 0 {
		s.gangs.list = slices.Delete(s.gangs.list, i, i+1)
	}
	s.releasePools(g, g.pools)
	g.pools = nil
}

// startGang sends the task to its first pool, with the nodes of all.
func (s *state) startGang(g *gang) {
	t, first := g.t, g.pools[0]
	nodes := make([]string, len(g.pools))
	for i, p := range g.pools {
		nodes[i] = p.reg.Node
		p.idleSince = time.Time{}
	}
	// Out of the queue since gangTake; charged every slot of the first
	// pool, released with its result like any task's.
	s.start(t, first, s.chargeOn(t, first))
	g.running = true
	fields := wire.AppendMPIFields(slices.Clip(t.fields().bytes()), nodes, g.ranks)
	for _, f := range taskFrames([][]byte{fields}, []int32{int32(t.attempts)}) {
		s.sendRaw(toPool, first.ident, f)
	}
	s.event("mpi_task_started", first.reg.BlockId, first.id, t.id,
		fmt.Sprintf("on %d nodes (%s), ranks per node: %d", len(nodes), strings.Join(nodes, ","), g.ranks))
}

// gangFinished releases the pools of a multi-node task that finished
// (result, cancellation, or failure for good).
func (s *state) gangFinished(t *task) {
	if g := s.gangs.byTask[t.id]; g != nil {
		s.dropGang(g)
	}
}

// gangCancelled notes that a running multi-node task's job was cancelled:
// its result then ends it, even when a pool of its gang was lost.
func (s *state) gangCancelled(t *task) {
	if g := s.gangs.byTask[t.id]; g != nil {
		g.cancelled = true
	}
}

// gangPoolLost handles the loss of a pool that a gang holds, before lose
// handles the pool's own tasks.
func (s *state) gangPoolLost(p *pool, why string) {
	g := p.gang
	switch {
	case !g.running: // reserve again, elsewhere
		s.unreserveGang(g)
	case p == g.pools[0]: // lose retries or fails the task with its pool
		s.dropGang(g)
	default:
		// The first pool still runs the task: stop it there; its report
		// ends the attempt (gangResult). The other pools are free now.
		if g.lost == "" {
			g.lost = fmt.Sprintf("pool %s on %s of its %d nodes was lost (%s)", p.id, p.reg.Node, g.nodes, why)
			first := g.pools[0]
			s.toPool(first.ident, &wire.Envelope{Body: &wire.Envelope_CancelTasks{CancelTasks: &wire.CancelTasks{Ids: []uint64{g.t.id}}}})
			s.event("mpi_task_lost", p.reg.BlockId, p.id, g.t.id, g.lost)
			s.log.Warn("a node of a running multi-node task was lost: stopping the task, to run it again", "task", g.t.id,
				"pool", first.id, "lost_pool", p.id, "lost_node", p.reg.Node)
		}
		rest := g.pools[1:]
		g.pools = g.pools[:1]
		s.releasePools(g, rest)
	}
}

// gangResult handles the result of a multi-node task that a lost pool of
// its gang took down: unless it succeeded anyway (or its job was
// cancelled), the attempt was lost, and the task runs again within its
// retry budget. It reports whether it handled the result.
func (s *state) gangResult(t *task, r *wire.Result, p *pool) bool {
	g := s.gangs.byTask[t.id]
	if g == nil || g.lost == "" || g.cancelled || r.ErrorKind == wire.ErrorKind_NONE {
		return false
	}
	s.dropGang(g)
	t.pool = nil
	s.pending.Attempts = append(s.pending.Attempts, journal.Attempt{TaskID: int64(t.id), Attempt: int(t.attempts),
		PoolID: p.id, BlockID: p.reg.BlockId, Node: p.reg.Node, State: "lost", ErrorKind: "manager_lost",
		StartedAt: time.Unix(0, t.dispatched), EndedAt: s.now})
	if t.attempts <= t.retries {
		t.state = stQueued
		s.queue.push(t)
		return true
	}
	s.finish(t, &wire.Result{TaskId: t.id, ErrorKind: wire.ErrorKind_MANAGER_LOST, Attempt: int32(t.attempts), ExitCode: -1,
		Error: fmt.Sprintf("%s after %d attempts", g.lost, t.attempts), EndUnixUs: s.now.UnixMicro()}, p)
	return true
}

// gangWaiting says why multi-node tasks wait (StatusReply.waiting).
func (s *state) gangWaiting() []string {
	var lines []string
	more := 0
	for _, g := range s.gangs.list {
		if g.running {
			continue
		}
		if len(lines) == maxWaitingLines {
			more++
			continue
		}
		lines = append(lines, fmt.Sprintf("task %d (--nodes %d): %s", g.t.id, g.nodes, s.whyWaiting(g)))
	}
	if more > 0 {
		lines = append(lines, fmt.Sprintf("and %d more multi-node tasks", more))
	}
	return lines
}

// whyWaiting is the reason one gang does not run yet.
func (s *state) whyWaiting(g *gang) string {
	if g.pools != nil {
		busy := 0
		for _, p := range g.pools {
			busy += len(p.running)
		}
		return fmt.Sprintf("holds %d pools of block %d; waiting for their %d running tasks to finish", len(g.pools), g.pools[0].reg.BlockId, busy)
	}
	up, upFit, free := map[int64]int{}, map[int64]int{}, map[int64]int{}
	noLauncher := 0
	for _, p := range s.poolOrder {
		if p.gone || s.draining(p) {
			continue
		}
		if p.reg.MpiLauncher == "" {
			noLauncher++
			continue
		}
		b := p.reg.BlockId
		up[b]++
		if s.fits(g.t, p) {
			upFit[b]++
			if p.gang == nil {
				free[b]++
			}
		}
	}
	most, mostBlock := 0, int64(-1)
	for _, b := range sortedKeys(up) {
		if up[b] > most {
			most, mostBlock = up[b], b
		}
	}
	switch {
	case most == 0 && noLauncher > 0:
		return fmt.Sprintf("the %d pools up cannot start MPI ranks (their block launcher has no MPI form)", noLauncher)
	case most < g.nodes && most == 0:
		return fmt.Sprintf("no block has %d pools up now (none is up)", g.nodes)
	case most < g.nodes:
		return fmt.Sprintf("no block has %d pools up now (most: %d, block %d)", g.nodes, most, mostBlock)
	}
	for _, b := range sortedKeys(upFit) {
		if upFit[b] >= g.nodes {
			return fmt.Sprintf("block %d has %d pools, %d of them held by other multi-node tasks", b, upFit[b], upFit[b]-free[b])
		}
	}
	return fmt.Sprintf("no block with %d pools up has time left for its time limit", g.nodes)
}
