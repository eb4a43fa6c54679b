package client

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/wire"
)

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
			ends := SubmitChunks(tt.specs)
			if tt.want != nil && !slices.Equal(ends, tt.want) {
				t.Fatalf("ends %v, want %v", ends, tt.want)
			}
			start := 0
			for _, end := range ends {
				req := &wire.Envelope{Body: &wire.Envelope_Submit{Submit: &wire.SubmitRequest{Tasks: tt.specs[start:end], JobId: 1 << 40, Last: true, Name: "n"}}}
				if n := proto.Size(req); n > wire.BatchBytes+64 || end-start > SubmitChunk {
					t.Fatalf("request %d..%d: %d bytes", start, end, n)
				}
				start = end
			}
			if start != len(tt.specs) {
				t.Fatalf("chunks end at %d of %d", start, len(tt.specs))
			}
		})
	}
}
