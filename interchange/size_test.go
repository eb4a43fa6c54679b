package interchange

import (
	"testing"
	"unsafe"
)

// TestTaskSize keeps a queued task small: millions of them wait in
// memory, each taking exactly its size in a page (tasks.go).
func TestTaskSize(t *testing.T) {
	if n := unsafe.Sizeof(task{}); n > 80 {
		t.Errorf("a task takes %d bytes, want at most 80", n)
	}
}
