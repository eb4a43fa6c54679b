package client

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/wire"
)

// TestSubmitChunks: a source's requests hold at most SubmitChunk tasks and
// wire.BatchBytes, the tasks in order.
func TestSubmitChunks(t *testing.T) {
	specs := func(n, argBytes int) []*wire.TaskSpec {
		arg := strings.Repeat("x", argBytes)
		out := make([]*wire.TaskSpec, n)
		for i := range out {
			out[i] = &wire.TaskSpec{Argv: []string{"/bin/sh", "-c", arg}, ArrayIndex: int64(i)}
		}
		return out
	}
	tests := []struct {
		name  string
		specs []*wire.TaskSpec
		want  []int // nil: only check the bounds
	}{
		{"one", specs(1, 10), []int{1}},
		{"count bound", specs(50000, 10), []int{20000, 40000, 50000}},
		{"20,000 lines of 3.5 KB (70 MB)", specs(20000, 3500), nil},
		{"tasks of 5 MiB", specs(7, 5<<20), []int{3, 6, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Specs(tt.specs)
			var ends []int
			var buf []*wire.TaskSpec
			start := 0
			for start < len(tt.specs) {
				buf = src.chunk(start, buf)
				end := start + len(buf)
				if len(buf) == 0 || buf[0] != tt.specs[start] || buf[len(buf)-1] != tt.specs[end-1] {
					t.Fatalf("request from %d: not the tasks in order", start)
				}
				req := &wire.Envelope{Body: &wire.Envelope_Submit{Submit: &wire.SubmitRequest{Tasks: buf, JobId: 1 << 40, Last: true, Name: "n"}}}
				if n := proto.Size(req); n > wire.BatchBytes+64 || end-start > SubmitChunk {
					t.Fatalf("request %d..%d: %d bytes", start, end, n)
				}
				// The same cut as the pools' and the results' batches.
				if want := wire.Cut(len(tt.specs)-start, func(i int) int { return wire.FieldSize(proto.Size(tt.specs[start+i])) }, SubmitChunk, wire.BatchBytes)[0]; end-start != want {
					t.Fatalf("request from %d has %d tasks, wire.Cut says %d", start, end-start, want)
				}
				ends = append(ends, end)
				start = end
			}
			if tt.want != nil && !slices.Equal(ends, tt.want) {
				t.Fatalf("ends %v, want %v", ends, tt.want)
			}
			if start != len(tt.specs) {
				t.Fatalf("chunks end at %d of %d", start, len(tt.specs))
			}
		})
	}
}

// TestSourceCheck: a bad task is refused by Check, naming it; a checked
// source is not made again by SubmitFrom's check.
func TestSourceCheck(t *testing.T) {
	made := 0
	src := Source{N: 3, At: func(i int) *wire.TaskSpec {
		made++
		s := &wire.TaskSpec{Argv: []string{"true"}}
		if i == 2 {
			s.Argv = []string{"a\x00b"}
		}
		return s
	}}
	if _, err := src.Check(); err == nil || !strings.Contains(err.Error(), "task 2: argument 0 holds a NUL byte") {
		t.Fatalf("Check: %v, want task 2's NUL byte", err)
	}
	src.N = 2
	checked, err := src.Check()
	if err != nil {
		t.Fatal(err)
	}
	made = 0
	if err := checked.check(); err != nil || made != 0 {
		t.Errorf("check of a checked source: %v, made %d tasks", err, made)
	}
	if err := (Source{N: 1, At: func(int) *wire.TaskSpec { return &wire.TaskSpec{Nodes: -1} }}).check(); err == nil ||
		!strings.Contains(err.Error(), "task 0: nodes -1") {
		t.Errorf("nodes -1: %v", err)
	}
}
