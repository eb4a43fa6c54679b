package interchange

import (
	"math"
	"testing"
	"unsafe"

	"github.com/htex/htex/wire"
)

// TestTaskSize keeps a queued task small: millions of them wait in
// memory, each taking exactly its size in a page (tasks.go).
func TestTaskSize(t *testing.T) {
	if n := unsafe.Sizeof(task{}); n > 64 {
		t.Errorf("a task takes %d bytes, want at most 64", n)
	}
	// What the narrow fields hold: retries and attempts (at most one
	// more) in int16, an encoding (under a frame) in uint32.
	if wire.MaxRetries+1 > math.MaxInt16 {
		t.Errorf("wire.MaxRetries %d does not fit a task's int16", wire.MaxRetries)
	}
	if wire.MaxFrame > math.MaxUint32 {
		t.Errorf("wire.MaxFrame %d does not fit a task's uint32 length", wire.MaxFrame)
	}
}
