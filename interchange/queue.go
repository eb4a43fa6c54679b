package interchange

import (
	"container/heap"
	"time"

	"github.com/htex/htex/wire"
)

type taskState uint8

const (
	stQueued taskState = iota
	stRunning
	stDone
)

// task is an unfinished task held in memory; finished tasks live only in
// the journal.
type task struct {
	id, jobID  uint64
	spec       *wire.TaskSpec
	retries    int32
	attempts   int32 // attempts started so far
	state      taskState
	pool       *pool
	dispatched time.Time
	heapIndex  int
}

// taskQueue orders queued tasks by priority (higher first), then by id.
// Entries whose state is no longer queued are dropped when popped.
type taskQueue []*task

func (q taskQueue) Len() int { return len(q) }
func (q taskQueue) Less(i, j int) bool {
	if q[i].spec.Priority != q[j].spec.Priority {
		return q[i].spec.Priority > q[j].spec.Priority
	}
	return q[i].id < q[j].id
}
func (q taskQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].heapIndex = i
	q[j].heapIndex = j
}
func (q *taskQueue) Push(x any) {
	t := x.(*task)
	t.heapIndex = len(*q)
	*q = append(*q, t)
}
func (q *taskQueue) Pop() any {
	old := *q
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.heapIndex = -1
	*q = old[:n-1]
	return t
}

func (q *taskQueue) push(t *task) { heap.Push(q, t) }

// pop returns the next queued task, or nil.
func (q *taskQueue) pop() *task {
	for q.Len() > 0 {
		t := heap.Pop(q).(*task)
		if t.state == stQueued {
			return t
		}
	}
	return nil
}
