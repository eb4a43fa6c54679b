package interchange

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/wire"
)

// TestTaskBatchBounded: tasks of any size are sent in frames of at most
// wire.BatchBytes (a larger task alone), in order, none lost.
func TestTaskBatchBounded(t *testing.T) {
	mb := strings.Repeat("a", 1<<20)
	tests := []struct {
		name     string
		argBytes []int // argv size of each task
		messages int
	}{
		{"few small tasks: one message", []int{10, 10, 10}, 1},
		{"40 tasks of 1.75 MiB: 70 MiB cut in five", repeat(40, 1792<<10), 5},
		{"one task over the budget goes alone", []int{10, wire.BatchBytes + 1, 10}, 3},
		{"none", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fields [][]byte
			var attempts []int32
			for i, n := range tt.argBytes {
				arg := strings.Repeat(mb, n/len(mb)) + mb[:n%len(mb)]
				fields = append(fields, wire.AppendTaskFields(nil, &wire.Task{Id: uint64(i + 1), Argv: []string{arg}}))
				attempts = append(attempts, 1)
			}
			var sent []*wire.Tasks
			for _, f := range taskFrames(fields, attempts) {
				m, err := wire.Decode(f)
				if err != nil {
					t.Fatal(err)
				}
				sent = append(sent, m.GetTasks())
			}
			if len(sent) != tt.messages {
				t.Fatalf("%d messages, want %d", len(sent), tt.messages)
			}
			next := uint64(1)
			for _, m := range sent {
				size := len(wire.MustEncode(&wire.Envelope{Body: &wire.Envelope_Tasks{Tasks: m}}))
				if len(m.Tasks) > 1 && size > wire.BatchBytes+16 {
					t.Errorf("a message of %d tasks takes %d bytes, over %d", len(m.Tasks), size, wire.BatchBytes)
				}
				for _, task := range m.Tasks {
					if task.Id != next {
						t.Fatalf("task %d sent where %d was due", task.Id, next)
					}
					next++
				}
			}
			if int(next-1) != len(tt.argBytes) {
				t.Fatalf("%d tasks sent of %d", next-1, len(tt.argBytes))
			}
		})
	}
}

func repeat(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestSplitDone(t *testing.T) {
	for _, n := range []int{0, 1, maxDoneEntries, maxDoneEntries + 1, 3*maxDoneEntries + 7} {
		done := make([]*wire.Done, n)
		for i := range done {
			done[i] = &wire.Done{TaskId: uint64(i)}
		}
		parts := splitDone(done)
		total := 0
		for _, p := range parts {
			if len(p) > maxDoneEntries {
				t.Fatalf("n=%d: a part of %d entries", n, len(p))
			}
			for _, d := range p {
				if d.TaskId != uint64(total) {
					t.Fatalf("n=%d: out of order", n)
				}
				total++
			}
		}
		if total != n {
			t.Fatalf("n=%d: %d entries in the parts", n, total)
		}
		if size := proto.Size(&wire.Progress{Done: parts[0]}); size > wire.BatchBytes {
			t.Fatalf("n=%d: a Progress of %d bytes", n, size)
		}
	}
}
