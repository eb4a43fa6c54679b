package interchange

import "fmt"

// shape is what a task asks for beyond one slot of one pool: CPUs,
// accelerators and memory (submit --cores, --gpus, --mem), or several
// whole nodes of one block (--nodes, --ranks-per-node). A task without a
// size has the zero shape.
type shape struct {
	cores, gpus  int32
	memBytes     int64
	nodes, ranks int32 // ranks per node
}

// sized reports whether the shape asks for anything beyond one slot.
func (v shape) sized() bool { return v != shape{} }

// shapeOf is the shape a task spec asks for.
func shapeOf(cores, gpus int32, memBytes int64, nodes, ranks int32) shape {
	if nodes <= 1 {
		nodes, ranks = 0, 0 // one node is not a multi-node task
	}
	return shape{cores: cores, gpus: gpus, memBytes: memBytes, nodes: nodes, ranks: ranks}
}

// shapeID names an interned shape; 0 is the zero shape. A task keeps the
// id (2 bytes in the padding of struct task) rather than the shape.
type shapeID uint16

// maxShapes bounds the distinct shapes of unfinished tasks at once.
const maxShapes = 1<<16 - 1

// shapeTable interns the shapes of unfinished tasks. Each id counts the
// tasks that hold it and is reused once none does, so a long-running
// daemon does not run out of ids however many sizes it sees over time.
type shapeTable struct {
	list []shape // by id; list[0] is the zero shape
	uses []int
	ids  map[shape]shapeID
	free []shapeID
}

// intern returns the id of v, counting one more task that holds it.
func (st *shapeTable) intern(v shape) (shapeID, error) {
	if !v.sized() {
		return 0, nil
	}
	if st.ids == nil {
		st.ids = map[shape]shapeID{}
		st.list, st.uses = []shape{{}}, []int{0}
	}
	if id, ok := st.ids[v]; ok {
		st.uses[id]++
		return id, nil
	}
	var id shapeID
	switch {
	case len(st.free) > 0:
		id = st.free[len(st.free)-1]
		st.free = st.free[:len(st.free)-1]
		st.list[id] = v
	case len(st.list) <= maxShapes:
		id = shapeID(len(st.list))
		st.list, st.uses = append(st.list, v), append(st.uses, 0)
	default:
		return 0, fmt.Errorf("more than %d distinct task sizes are queued or running; use fewer distinct --cores/--gpus/--mem/--nodes values", maxShapes)
	}
	st.ids[v] = id
	st.uses[id] = 1
	return id, nil
}

// get returns the shape of id.
func (st *shapeTable) get(id shapeID) shape {
	if id == 0 {
		return shape{}
	}
	return st.list[id]
}

// release counts one task fewer that holds id (the task finished).
func (st *shapeTable) release(id shapeID) {
	if id == 0 {
		return
	}
	if st.uses[id]--; st.uses[id] == 0 {
		delete(st.ids, st.list[id])
		st.list[id] = shape{}
		st.free = append(st.free, id)
	}
}

// len is the number of distinct shapes held now.
func (st *shapeTable) len() int { return len(st.ids) }
