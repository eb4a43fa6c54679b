package worker

import (
	"sync"

	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

// board places the pool's tasks on its slots. The pool's loop pushes the
// tasks it receives, in order; they wait in a FIFO until the slots they
// take are free: one for a task without a size, slotsFor of them for a
// task of a size, chosen by pickSlots. Each slot's goroutine asks for its
// next task (next), which frees the slots its previous task held. A task
// of a size runs on the first of its slots; the others stay busy, their
// goroutines idle, until it ends, so no two running tasks share a slot
// and, pinned, never a CPU.
//
// Tasks are placed in the order they came: a task of a size at the head
// holds back those behind it until its slots are free. The interchange
// sends a task of a size only when the pool has the slots free for it
// (they are free by the time the tasks before it are placed), so this
// wait is short and rare, but the pool stays correct without it.
type board struct {
	mu     sync.Mutex
	slots  []pinning.Slot
	shape  pinning.Shape
	group  []int      // socket of each slot, nil = one
	devs   [][]string // accelerator devices of each slot
	fifo   []*wire.Task
	head   int
	free   []bool
	idle   []int // the free slots, the most recently freed last
	inbox  []chan *wire.Task
	held   map[uint64][]int // the slots of each running task of a size, the one it runs on first
	closed bool
}

func newBoard(slots []pinning.Slot, shape pinning.Shape, group []int) *board {
	b := &board{slots: slots, shape: shape, group: group, free: make([]bool, len(slots)),
		inbox: make([]chan *wire.Task, len(slots)), held: map[uint64][]int{}}
	if len(group) != len(slots) {
		b.group = nil
	}
	b.devs = make([][]string, len(slots))
	for i, s := range slots {
		b.devs[i] = pinning.Devices(s.Accelerator)
	}
	for i := range b.inbox {
		b.inbox[i] = make(chan *wire.Task, 1)
	}
	return b
}

// push queues tasks and places what it can (the pool's loop).
func (b *board) push(ts ...*wire.Task) {
	b.mu.Lock()
	b.fifo = append(b.fifo, ts...)
	b.assign()
	b.mu.Unlock()
}

// release frees the slot rank and the other slots its task done held
// (nil: it ran none yet), and places what waits on them.
func (b *board) release(rank int, done *wire.Task) {
	b.mu.Lock()
	if done != nil {
		if ranks, ok := b.held[done.Id]; ok {
			delete(b.held, done.Id)
			for _, r := range ranks[1:] {
				b.setFree(r)
			}
		}
	}
	b.setFree(rank)
	b.assign()
	b.mu.Unlock()
}

// wait returns the next task placed on the slot rank: nil once the board
// is closed.
func (b *board) wait(rank int) *wire.Task { return <-b.inbox[rank] }

// heldBy returns the slots of a running task of a size, the one it runs
// on first (nil for a task of one slot).
func (b *board) heldBy(id uint64) []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held[id]
}

// close ends the slots' waits; tasks not placed are dropped (the pool is
// leaving, and kills what runs).
func (b *board) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		for _, c := range b.inbox {
			close(c)
		}
	}
}

func (b *board) setFree(r int) {
	if !b.free[r] {
		b.free[r] = true
		b.idle = append(b.idle, r)
	}
}

// assign places tasks from the head of the FIFO while their slots are
// free (b.mu held). A free slot's inbox is empty, so a send to it does
// not block.
func (b *board) assign() {
	for !b.closed && b.head < len(b.fifo) && len(b.idle) > 0 {
		t := b.fifo[b.head]
		if !sized(t) {
			r := b.idle[len(b.idle)-1]
			b.idle = b.idle[:len(b.idle)-1]
			b.free[r] = false
			b.inbox[r] <- t
		} else {
			var devs [][]string
			if t.Gpus > 0 {
				devs = b.devs
			}
			ranks := pickSlots(b.free, b.group, devs, slotsFor(t, b.shape))
			if ranks == nil {
				return
			}
			b.held[t.Id] = ranks
			for _, r := range ranks {
				b.free[r] = false
			}
			keep := b.idle[:0]
			for _, r := range b.idle {
				if b.free[r] {
					keep = append(keep, r)
				}
			}
			b.idle = keep
			b.inbox[ranks[0]] <- t
		}
		b.fifo[b.head] = nil
		b.head++
		switch {
		case b.head == len(b.fifo):
			b.fifo, b.head = b.fifo[:0], 0
		case b.head >= 1024 && 2*b.head >= len(b.fifo): // reuse the placed front
			n := copy(b.fifo, b.fifo[b.head:])
			clear(b.fifo[n:])
			b.fifo, b.head = b.fifo[:n], 0
		}
	}
}
