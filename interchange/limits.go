package interchange

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/wire"
)

// This file holds the interchange's side of the size limits (wire/limits.go):
// task batches to pools, result pages and progress messages to clients
// are cut into messages of at most wire.BatchBytes.

// maxDoneEntries bounds the finished tasks one Progress message carries
// (about 20 bytes each): a watcher that missed many turns gets several.
const maxDoneEntries = 100000

// taskBatch gathers the tasks dispatched to one pool and sends them in
// messages of at most wire.BatchBytes.
type taskBatch struct {
	send  func(*wire.Tasks)
	tasks []*wire.Task
	bytes int
}

// add queues t, first sending what is gathered when t would take the
// batch over the budget.
func (b *taskBatch) add(t *wire.Task) {
	n := wire.FieldSize(proto.Size(t))
	if len(b.tasks) > 0 && b.bytes+n > wire.BatchBytes {
		b.flush()
	}
	b.tasks = append(b.tasks, t)
	b.bytes += n
}

// flush sends what is gathered.
func (b *taskBatch) flush() {
	if len(b.tasks) == 0 {
		return
	}
	b.send(&wire.Tasks{Tasks: b.tasks})
	b.tasks, b.bytes = nil, 0
}

// unsendable reports why a task can never go to a pool: one message could
// not hold it. Submit refuses such tasks (wire.CheckTaskSizes); a journal
// written by an older htex may still hold one.
func unsendable(spec *wire.TaskSpec) error {
	if err := wire.CheckTaskSizes(spec); err != nil {
		return fmt.Errorf("the task cannot be sent to a pool: %w", err)
	}
	return nil
}

// resultRowBytes estimates what one result row costs in a ResultsReply.
func resultRowBytes(tr *wire.TaskResult) int {
	return wire.FieldSize(proto.Size(tr))
}

// splitDone cuts a watcher's finished tasks into Progress-sized parts.
func splitDone(done []*wire.Done) [][]*wire.Done {
	if len(done) <= maxDoneEntries {
		return [][]*wire.Done{done}
	}
	var parts [][]*wire.Done
	for len(done) > 0 {
		n := min(len(done), maxDoneEntries)
		parts = append(parts, done[:n])
		done = done[n:]
	}
	return parts
}
