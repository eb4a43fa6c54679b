package interchange

import (
	"cmp"
	"container/heap"
	"slices"
	"unsafe"

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
// queued task costs one struct and its encoded bytes. The struct takes 64
// bytes (TestTaskSize): its submission time is kept by runs of ids
// (submitted.go), retries and attempts are bounded by wire.MaxRetries, and
// the encoding's length packs with the other 4-byte fields.
type task struct {
	id, jobID  uint64
	enc        *byte // the encoding (fields), nil when spilled
	timeoutMs  int64
	pool       *pool
	dispatched int64 // unix ns of the current attempt's start (a time.Time is 24 bytes)
	priority   int32
	encLen     uint32  // the encoding's length
	retries    int16   // at most wire.MaxRetries
	attempts   int16   // attempts started so far: at most retries+1
	shape      shapeID // what it asks for beyond one slot (shapes.go)
	state      taskState
}

// fields returns the task's encoding (wire.AppendTaskFields, in the arena).
func (t *task) fields() encoded { return encoded{p: t.enc, n: int(t.encLen)} }

// setFields sets the task's encoding; encoded{} drops it.
func (t *task) setFields(e encoded) { t.enc, t.encLen = e.p, uint32(e.n) }

// taskArena packs the encoded fields of tasks into chunks, so that a task
// does not cost an allocation of its own; a chunk is freed when no task
// refers to it any more.
type taskArena struct {
	chunk   []byte
	scratch []byte
}

const arenaChunk = 64 << 10

// encoded is a task's wire fields, read-only: a pointer and a length. A
// task keeps them as two fields (task.fields), the length in 4 bytes: an
// encoding is bounded by wire.MaxFrame. The zero value is a task without
// its encoding (spilled).
type encoded struct {
	p *byte
	n int
}

func encodedOf(b []byte) encoded { return encoded{p: unsafe.SliceData(b), n: len(b)} }

// loaded reports whether the task holds its encoding.
func (e encoded) loaded() bool { return e.p != nil }

// bytes returns the encoding; callers must not change it.
func (e encoded) bytes() []byte { return unsafe.Slice(e.p, e.n) }

// fieldsOf encodes a task's wire fields into the arena.
func (a *taskArena) fieldsOf(t *wire.Task) encoded {
	a.scratch = wire.AppendTaskFields(a.scratch[:0], t)
	n := len(a.scratch)
	if n > arenaChunk/4 { // a large task gets its own
		return encodedOf(append([]byte(nil), a.scratch...))
	}
	if cap(a.chunk)-len(a.chunk) < n {
		a.chunk = make([]byte, 0, arenaChunk)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, a.scratch...)
	return encodedOf(a.chunk[start : start+n : start+n])
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
	fifo taskFIFO // ascending ids
	back idHeap   // tasks pushed with an id below the FIFO's tail
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
	if tail := l.fifo.last(); tail == nil || tail.id < t.id {
		l.fifo.push(t)
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
	front := l.fifo.first()
	if len(l.back) > 0 && (front == nil || l.back[0].id < front.id) {
		return heap.Pop(&l.back).(*task)
	}
	if front == nil {
		return nil
	}
	return l.fifo.pop()
}

// taskFIFO is a queue of tasks in blocks of fifoBlock pointers: pushing
// never copies what is queued (one slice of 10,000,000 pointers would be
// copied as it grows, 80 MB beside its old 64 MB), and a block goes as
// soon as its last task is popped.
type taskFIFO struct {
	blocks     [][]*task // blocks[0][head:] up to the last block's end
	head, size int
}

const fifoBlock = 4096

func (f *taskFIFO) push(t *task) {
	n := len(f.blocks)
	if n == 0 || len(f.blocks[n-1]) == fifoBlock {
		f.blocks = append(f.blocks, make([]*task, 0, fifoBlock))
		n++
	}
	f.blocks[n-1] = append(f.blocks[n-1], t)
	f.size++
}

// first returns the task at the front, or nil.
func (f *taskFIFO) first() *task {
	if f.size == 0 {
		return nil
	}
	return f.blocks[0][f.head]
}

// last returns the task at the back, or nil.
func (f *taskFIFO) last() *task {
	if f.size == 0 {
		return nil
	}
	b := f.blocks[len(f.blocks)-1]
	return b[len(b)-1]
}

// pop removes and returns the front task; the FIFO must not be empty.
func (f *taskFIFO) pop() *task {
	b := f.blocks[0]
	t := b[f.head]
	b[f.head] = nil
	f.head++
	f.size--
	if f.head == len(b) && (f.size > 0 || len(b) == fifoBlock) {
		f.blocks[0] = nil
		f.blocks = f.blocks[1:]
		f.head = 0
	} else if f.size == 0 {
		f.blocks[0], f.head = b[:0], 0 // reuse the one block
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
