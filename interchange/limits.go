package interchange

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// This file holds the interchange's side of the size limits (wire/limits.go):
// task batches to pools, result pages and progress messages to clients
// are cut into messages of at most wire.BatchBytes.

// maxDoneEntries bounds the finished tasks one Progress message carries
// (about 20 bytes each): a watcher that missed many turns gets several.
const maxDoneEntries = 100000

// taskFrames cuts the tasks dispatched to one pool (their encodings and
// attempts, wire.TasksFrame) into frames of at most wire.BatchBytes; a
// task larger than that goes alone.
func taskFrames(fields [][]byte, attempts []int32) [][]byte {
	var frames [][]byte
	start, bytes := 0, 0
	for i, f := range fields {
		n := wire.TasksFrameSize(f, attempts[i])
		if i > start && bytes+n > wire.BatchBytes {
			frames = append(frames, wire.TasksFrame(fields[start:i], attempts[start:i]))
			start, bytes = i, 0
		}
		bytes += n
	}
	if start < len(fields) {
		frames = append(frames, wire.TasksFrame(fields[start:], attempts[start:]))
	}
	return frames
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

// unsendableTask is unsendable for a task of the journal, without building
// its spec unless one of its sizes is over a limit.
func unsendableTask(jt *journal.Task) error {
	if wire.ArgEnvBytes(jt.Argv, jt.Env) <= wire.MaxArgEnvBytes && len(jt.Cwd) <= wire.MaxPathBytes &&
		len(jt.StdoutPath) <= wire.MaxPathBytes && len(jt.StderrPath) <= wire.MaxPathBytes {
		return nil
	}
	return unsendable(specFromJournal(*jt))
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
