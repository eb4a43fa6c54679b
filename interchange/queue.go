package interchange

import (
	"cmp"
	"container/heap"
	"slices"

	"github.com/htex/htex/wire"
)

type taskState uint8

const (
	stQueued taskState = iota
	stRunning
	stDone
)

// task is an unfinished task held in memory; finished tasks live only in
// the journal. Of its spec only what dispatch decides on is kept as
// fields; the rest is the task's encoding for the wire (wire.Task without
// the attempt), packed with other tasks' in shared chunks (taskArena): a
// queued task costs one struct and its encoded bytes.
type task struct {
	id, jobID  uint64
	fields     []byte // wire.AppendTaskFields
	timeoutMs  int64
	priority   int32
	retries    int32
	attempts   int32 // attempts started so far
	state      taskState
	shape      shapeID // what it asks for beyond one slot (shapes.go)
	pool       *pool
	dispatched int64 // unix ns of the current attempt's start (a time.Time is 24 bytes)
	submitted  int64 // unix ns of the submission, 0 = unknown (for the latency metrics)
}

// taskArena packs the encoded fields of tasks into chunks, so that a task
// does not cost an allocation of its own; a chunk is freed when no task
// refers to it any more.
type taskArena struct {
	chunk   []byte
	scratch []byte
}

const arenaChunk = 64 << 10

// fieldsOf encodes a task's wire fields into the arena.
func (a *taskArena) fieldsOf(t *wire.Task) []byte {
	a.scratch = wire.AppendTaskFields(a.scratch[:0], t)
	n := len(a.scratch)
	if n > arenaChunk/4 { // a large task gets its own
		return append([]byte(nil), a.scratch...)
	}
	if cap(a.chunk)-len(a.chunk) < n {
		a.chunk = make([]byte, 0, arenaChunk)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, a.scratch...)
	return a.chunk[start : start+n : start+n]
}

// taskQueue orders queued tasks by priority (higher first), then by id
// (lower first). Tasks mostly arrive in id order (submissions, a restore),
// so each priority keeps them in a FIFO, which pushes and pops in O(1)
// however many millions wait; a task that goes back in (a retry, one that
// no pool could take) is older than its FIFO's tail and waits in a small
// heap beside it. Entries whose state is no longer queued are dropped when
// popped; Len counts them until then.
type taskQueue struct {
	levels map[int32]*level
	prios  []int32 // priorities that have a level, highest first
	n      int
}

// level holds the queued tasks of one priority.
type level struct {
	fifo []*task // ascending ids from head on
	head int
	back idHeap // tasks pushed with an id below the FIFO's tail
}

func (q *taskQueue) Len() int { return q.n }

func (q *taskQueue) push(t *task) {
	p := t.priority
	l := q.levels[p]
	if l == nil {
		if q.levels == nil {
			q.levels = map[int32]*level{}
		}
		l = &level{}
		q.levels[p] = l
		i, _ := slices.BinarySearchFunc(q.prios, p, func(a, b int32) int { return cmp.Compare(b, a) })
		q.prios = slices.Insert(q.prios, i, p)
	}
	if n := len(l.fifo); n == l.head || l.fifo[n-1].id < t.id {
		l.fifo = append(l.fifo, t)
	} else {
		heap.Push(&l.back, t)
	}
	q.n++
}

// pop returns the next queued task, or nil.
func (q *taskQueue) pop() *task {
	for len(q.prios) > 0 {
		p := q.prios[0]
		l := q.levels[p]
		for {
			t := l.take()
			if t == nil {
				break
			}
			q.n--
			if t.state == stQueued {
				return t
			}
		}
		delete(q.levels, p)
		q.prios = q.prios[1:]
	}
	return nil
}

// take removes and returns the level's task of lowest id, or nil.
func (l *level) take() *task {
	inFIFO := l.head < len(l.fifo)
	if len(l.back) > 0 && (!inFIFO || l.back[0].id < l.fifo[l.head].id) {
		return heap.Pop(&l.back).(*task)
	}
	if !inFIFO {
		return nil
	}
	t := l.fifo[l.head]
	l.fifo[l.head] = nil
	l.head++
	switch {
	case l.head == len(l.fifo):
		l.fifo, l.head = l.fifo[:0], 0
	case l.head >= 4096 && 2*l.head >= len(l.fifo): // reuse the popped front
		n := copy(l.fifo, l.fifo[l.head:])
		clear(l.fifo[n:])
		l.fifo, l.head = l.fifo[:n], 0
	}
	return t
}

// idHeap is a min-heap of tasks by id.
type idHeap []*task

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i].id < h[j].id }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(*task)) }
func (h *idHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
