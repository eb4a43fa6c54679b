package interchange

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/htex/htex/wire"
)

// Tasks of a size (submit --cores, --gpus, --mem; docs/task-sizes.md).
//
// A pool is cut into slots by the executor's pinning settings, and says in
// its registration what one slot holds (slotShape). A task without a size
// takes one slot, as it always has. A task of a size is charged the
// smallest number of whole slots that cover it (weight), and a pool's
// used capacity is the sum of the charges of its tasks.
//
// A sized task goes to a pool only when its charge fits the pool's free
// slots now: it never waits in a pool's prefetch buffer, where it would
// hold slots that other work could use. When dispatch comes to a sized
// task that the pool it serves cannot take now, the task leaves the queue
// for the waiting list and is placed on any other pool that can take it
// now; if none can, it reserves the pool that will have room soonest (the
// fewest charged slots to free), which takes no new task until the
// reserved one starts on it, while every other pool goes on taking the
// tasks behind it (backfill). So a large task at the head of the queue
// is not starved by a stream of small ones, and only one pool drains for
// it. Each waiting task holds at most one reservation and each pool at
// most one; a task that no pool now up can ever take (too large for their
// slots, GPUs from pools without) waits without one, and status says why.
//
// The scans over pools here cost the number of pools, but only for sized
// tasks: the path of a task without a size is that of dispatch.go.

// slotShape is one pool's slots, as its registration gives them.
type slotShape struct {
	slots      int
	cpus, gpus int
	mem        int64
	perGPU     int // slots that share one GPU through MPS; 0 = none share
}

// poolShapeOf reads a registration's slot shape. A pool that gave no slot
// CPUs (it cannot happen with this version's pools) counts its CPUs shared
// evenly, at least one a slot.
func poolShapeOf(r *wire.Register) slotShape {
	sh := slotShape{slots: int(r.Slots), cpus: int(r.SlotCpus), gpus: int(r.SlotGpus), mem: r.SlotMemBytes,
		perGPU: int(r.SlotsPerGpu)}
	if sh.cpus < 1 {
		sh.cpus = max(1, int(r.Cpus)/max(1, sh.slots))
	}
	return sh
}

// weight is the number of whole slots of a pool of shape ps that a task
// of shape v is charged: max(1, ceil(cores/slot CPUs), ceil(gpus/slot
// GPUs), ceil(mem/slot memory)), where a GPU of slots that share GPUs
// through MPS counts as the slots that share it (whole GPUs, not shares:
// gpus × perGPU). ok is false when a pool of that shape can
// never run the task: it is charged more slots than the pool has, it asks
// for GPUs or memory the pool's slots do not have (or do not say), or it
// is a multi-node task (those are placed by whole pools).
func weight(v shape, ps slotShape) (w int, ok bool) {
	if v.nodes > 1 || ps.slots < 1 {
		return 0, false
	}
	n := int64(1)
	if v.cores > 0 {
		n = max(n, ceilDiv(int64(v.cores), int64(max(ps.cpus, 1))))
	}
	if v.gpus > 0 {
		if ps.gpus < 1 {
			return 0, false
		}
		n = max(n, ceilDiv(int64(v.gpus), int64(ps.gpus)))
		if ps.perGPU > 1 {
			n = max(n, int64(v.gpus)*int64(ps.perGPU))
		}
	}
	if v.memBytes > 0 {
		if ps.mem < 1 {
			return 0, false
		}
		n = max(n, ceilDiv(v.memBytes, ps.mem))
	}
	if n > int64(ps.slots) {
		return 0, false
	}
	return int(n), true
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// String writes a shape as submit's flags: "--cores 4 --mem 4G".
func (v shape) String() string {
	var parts []string
	if s := wire.SizeFlags(v.cores, v.gpus, v.memBytes); s != "" {
		parts = append(parts, s)
	}
	if v.nodes > 1 {
		parts = append(parts, "--nodes "+strconv.Itoa(int(v.nodes)))
	}
	if v.ranks > 0 {
		parts = append(parts, "--ranks-per-node "+strconv.Itoa(int(v.ranks)))
	}
	return strings.Join(parts, " ")
}

// describeSlots writes a pool's shape for people: "16 CPUs in 16 slots of
// 1 CPU, 0 GPUs, 62.5G".
func describeSlots(ps slotShape, cpus, gpus int, mem int64) string {
	s := fmt.Sprintf("%d CPUs in %d slots of %d CPU", cpus, ps.slots, ps.cpus)
	if ps.cpus != 1 {
		s += "s"
	}
	if ps.gpus > 0 {
		s += fmt.Sprintf(" and %d GPU", ps.gpus)
		if ps.gpus != 1 {
			s += "s"
		}
	}
	if mem <= 0 {
		return s + fmt.Sprintf(", %d GPUs, memory not known", gpus)
	}
	return s + fmt.Sprintf(", %d GPUs, %s", gpus, wire.FormatMem(mem))
}

// PoolShape is the shape of the pools a config starts, known before any
// pool registers (from the provider's cores and memory per node, the
// executor's accelerators, or this machine for the local provider), so
// that a task no pool of the config could ever run is refused at submit.
// The zero PoolShape is unknown: nothing is refused for its size.
type PoolShape struct {
	Slots, SlotCPUs, SlotGPUs int
	SlotMemBytes              int64
	SlotsPerGPU               int // slots that share one GPU through MPS, 0 = none
	// The node's, for messages.
	CPUs, GPUs int
	MemBytes   int64
}

func (ps PoolShape) slotShape() slotShape {
	return slotShape{slots: ps.Slots, cpus: ps.SlotCPUs, gpus: ps.SlotGPUs, mem: ps.SlotMemBytes, perGPU: ps.SlotsPerGPU}
}

// refuseSize is the error for a task no pool of the config, and no pool
// now up, can ever run; nil when one can, or when the config's shape is
// unknown. Multi-node tasks are checked where they are placed (gang.go).
func (s *state) refuseSize(i int, v shape) error {
	ps := s.cfg.PoolShape
	if !v.sized() || v.nodes > 1 || ps.Slots < 1 {
		return nil
	}
	if _, ok := weight(v, ps.slotShape()); ok {
		return nil
	}
	for _, p := range s.poolOrder {
		if _, ok := weight(v, p.shape); ok {
			return nil
		}
	}
	return fmt.Errorf("task %d: %s does not fit any pool of this config: the largest has %s", i, v,
		describeSlots(ps.slotShape(), ps.CPUs, ps.GPUs, ps.MemBytes))
}

// specShape is the shape a task spec asks for.
func specShape(t *wire.TaskSpec) shape {
	return shapeOf(t.Cores, t.Gpus, t.MemBytes, t.Nodes, t.RanksPerNode)
}

// shapesFit refuses a submission whose sizes would take the shape table
// past its bound (maxShapes distinct sizes queued or running at once).
func (s *state) shapesFit(specs []*wire.TaskSpec) error {
	var fresh map[shape]bool
	for _, t := range specs {
		v := specShape(t)
		if !v.sized() || fresh[v] {
			continue
		}
		if _, ok := s.shapes.ids[v]; ok {
			continue
		}
		if fresh == nil {
			fresh = map[shape]bool{}
		}
		fresh[v] = true
	}
	if n := s.shapes.len() + len(fresh); n > maxShapes {
		return fmt.Errorf("%d distinct task sizes would be queued or running, over the limit of %d; use fewer distinct --cores/--gpus/--mem/--nodes values", n, maxShapes)
	}
	return nil
}

// extraSlots is the slots beyond one that a task of a size takes on a
// pool of the config's shape: what the scaler adds to its count of tasks,
// so that 100 tasks of 8 cores ask for the blocks that run them. 0 for a
// task without a size, when the config's shape is unknown, or when it
// does not fit that shape. It depends only on the task and the config, so
// what is added when a task is queued is what is taken when it leaves.
func (s *state) extraSlots(t *task) int {
	if t.shape == 0 || s.cfg.PoolShape.Slots < 1 {
		return 0
	}
	w, ok := weight(s.shapes.get(t.shape), s.cfg.PoolShape.slotShape())
	if !ok {
		return 0
	}
	return w - 1
}

// waiter is a sized task that the pool dispatch served could not take:
// it has left the queue and waits here, with the pool reserved for it
// (charged w slots there) or none.
type waiter struct {
	t    *task
	pool *pool
	w    int
}

// room is the slots of p free now; prefetched tasks count as held.
func (p *pool) room() int { return p.shape.slots - p.used }

// chargeOn is the slots a task is charged on p (1 without a size).
func (s *state) chargeOn(t *task, p *pool) int {
	if t.shape == 0 {
		return 1
	}
	w, ok := weight(s.shapes.get(t.shape), p.shape)
	if !ok { // a pool that registered again smaller: it holds all its slots
		return max(p.shape.slots, 1)
	}
	return w
}

// recount sets p.used from the tasks it holds (registration).
func (s *state) recount(p *pool) {
	p.used = 0
	for _, t := range p.running {
		p.used += s.chargeOn(t, p)
	}
}

// sizedFits returns the charge of a sized task on p when p can take it
// now: its charge fits p's free slots and its time limit p's block.
func (s *state) sizedFits(t *task, p *pool) (int, bool) {
	w, ok := weight(s.shapes.get(t.shape), p.shape)
	return w, ok && w <= p.room() && s.fits(t, p)
}

// sizedFields is a sized task's encoding for one dispatch: its fields and
// the slots it is charged.
func sizedFields(t *task, w int) []byte {
	b := t.fields().bytes()
	f := make([]byte, 0, len(b)+8)
	return wire.AppendTaskSlots(append(f, b...), int32(w))
}

// wait puts a sized task that the pool being filled cannot take on the
// waiting list, and places it at once if another pool can take it or
// reserves one for it.
func (s *state) wait(t *task) {
	wt := &waiter{t: t}
	if s.noPool[noPoolKey{t.shape, t.timeoutMs}] || !s.place(wt) {
		s.waiting = append(s.waiting, wt)
	}
}

// noPoolKey is what decides which pools can take a task of a size: its
// shape and its time limit. A key in state.noPool found no pool that could
// take the task or be reserved for it; until pools change (poolsChanged)
// nor can any other task of that key, so wait does not look at every pool
// again for each of them. (Time only shortens what fits a block.)
type noPoolKey struct {
	shape     shapeID
	timeoutMs int64
}

// poolsChanged is called when a pool registers, drains or goes, or a
// reservation ends: the waiting tasks without a reservation look again.
func (s *state) poolsChanged() {
	s.rescan = true
	clear(s.noPool)
}

// place starts a waiting task on the first pool that can take it now and
// reports true; else it reserves for it the pool that needs the fewest
// slots freed (the first such in registration order), if any.
func (s *state) place(wt *waiter) bool {
	v := s.shapes.get(wt.t.shape)
	var best *pool
	bestNeed, bestW := 0, 0
	for _, q := range s.poolOrder {
		if q.gone || q.resv != nil || q.gang != nil || s.draining(q) || !s.fits(wt.t, q) { // gang: held by a multi-node task
			continue
		}
		w, ok := weight(v, q.shape)
		if !ok {
			continue
		}
		if need := w - q.room(); need <= 0 {
			s.startOne(wt.t, q, w)
			return true
		} else if best == nil || need < bestNeed {
			best, bestNeed, bestW = q, need, w
		}
	}
	if best == nil {
		if s.noPool == nil {
			s.noPool = map[noPoolKey]bool{}
		}
		s.noPool[noPoolKey{wt.t.shape, wt.t.timeoutMs}] = true
		return false
	}
	wt.pool, wt.w = best, bestW
	best.resv = wt
	s.log.Info("pool reserved for a task of a size", "pool", best.id, "task", wt.t.id, "size", v.String(),
		"slots", bestW, "to_free", bestNeed)
	return false
}

// startOne dispatches one sized task to p in a Tasks message of its own.
func (s *state) startOne(t *task, p *pool, w int) {
	s.start(t, p, w)
	p.idleSince = time.Time{}
	s.sendRaw(toPool, p.ident, wire.TasksFrame([][]byte{sizedFields(t, w)}, []int32{int32(t.attempts)}))
}

// unreserve ends a waiter's reservation: its pool takes tasks again, and
// waiting tasks without one look again.
func (s *state) unreserve(wt *waiter) {
	if p := wt.pool; p != nil {
		p.resv, wt.pool = nil, nil
		s.poolsChanged()
		s.markReady(p)
	}
}

// serveWaiting starts the waiting tasks whose reserved pool has room now,
// drops those no longer queued (cancelled, or claimed by a pool that
// registered again), and when pools changed (rescan) places those without
// a reservation. Called by dispatch before the queue's tasks, so that
// tasks that waited go first; it looks only when something may have
// changed for them (waitDirty: results of a reserved pool, a finished
// waiting task, the periodic tick; rescan), so that a long waiting list
// costs nothing while it cannot move.
func (s *state) serveWaiting() {
	if len(s.waiting) == 0 || !s.waitDirty && !s.rescan {
		return
	}
	s.waitDirty = false
	rescan := s.rescan
	s.rescan = false
	keep := s.waiting[:0]
	for _, wt := range s.waiting {
		t := wt.t
		if t.state != stQueued {
			s.unreserve(wt)
			continue
		}
		if p := wt.pool; p != nil {
			switch {
			case p.gone || s.draining(p) || !s.fits(t, p):
				s.unreserve(wt)
				rescan = true
			case p.room() >= wt.w:
				s.unreserve(wt)
				s.startOne(t, p, wt.w)
				continue
			default:
				keep = append(keep, wt)
				continue
			}
		}
		if rescan && !s.noPool[noPoolKey{t.shape, t.timeoutMs}] && s.place(wt) {
			continue
		}
		keep = append(keep, wt)
	}
	clear(s.waiting[len(keep):])
	s.waiting = keep
}

// waitingReasons says why sized tasks wait, for status: one line per
// reserved pool (at most a few), and one per size that no pool now up
// takes.
func (s *state) waitingReasons() []string {
	var out []string
	type group struct {
		v        shape
		n        int
		reserved bool // some pool fits them, but each is reserved
	}
	var groups []*group
	byShape := map[shapeID]*group{}
	reservedShown := 0
	for _, wt := range s.waiting {
		t := wt.t
		if t.state != stQueued {
			continue
		}
		v := s.shapes.get(t.shape)
		if p := wt.pool; p != nil {
			if reservedShown++; reservedShown <= 5 {
				out = append(out, fmt.Sprintf("task %d (%s): pool %s on %s is reserved for it and takes no new tasks until %d more of its slots are free",
					t.id, v, p.id, p.reg.Node, wt.w-p.room()))
			}
			continue
		}
		g := byShape[t.shape]
		if g == nil {
			g = &group{v: v}
			for _, p := range s.poolOrder {
				if _, ok := weight(v, p.shape); ok && !s.draining(p) {
					g.reserved = true
				}
			}
			byShape[t.shape] = g
			groups = append(groups, g)
		}
		g.n++
	}
	if reservedShown > 5 {
		out = append(out, fmt.Sprintf("%d more tasks of a size have a pool reserved", reservedShown-5))
	}
	for _, g := range groups {
		what, them := fmt.Sprintf("%d task", g.n), "it"
		if g.n != 1 {
			what, them = what+"s", "them"
		}
		switch {
		case g.reserved:
			out = append(out, fmt.Sprintf("%s of %s: every pool that fits %s is reserved for an earlier task of a size, or draining", what, g.v, them))
		case len(s.poolOrder) == 0:
			out = append(out, fmt.Sprintf("%s of %s: no pool is connected", what, g.v))
		default:
			out = append(out, fmt.Sprintf("%s of %s: no pool now up can take %s (the largest has %s); waiting for a pool of a larger shape",
				what, g.v, them, s.largestNow()))
		}
	}
	return out
}

// largestNow describes the pool now up with the most slots.
func (s *state) largestNow() string {
	var best *pool
	for _, p := range s.poolOrder {
		if best == nil || p.shape.slots*p.shape.cpus > best.shape.slots*best.shape.cpus {
			best = p
		}
	}
	if best == nil {
		return "no pool"
	}
	return describeSlots(best.shape, int(best.reg.Cpus), len(best.reg.Accelerators), int64(best.reg.MemoryGb*(1<<30)))
}
