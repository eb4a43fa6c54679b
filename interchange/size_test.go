package interchange

import (
	"testing"
	"unsafe"
)

// TestTaskSize keeps a queued task small: a million of them wait in
// memory. 80 bytes is a size class of Go's allocator; a field more moves
// every task to the next (96).
func TestTaskSize(t *testing.T) {
	if n := unsafe.Sizeof(task{}); n > 80 {
		t.Errorf("a task takes %d bytes, want at most 80", n)
	}
}
