package app

import (
	"os"
	"strings"
	"testing"
)

func TestElfIsStatic(t *testing.T) {
	// The test binary links libc dynamically (cgo: libzmq, SQLite).
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if static, err := elfIsStatic(exe); err != nil || static {
		t.Errorf("elfIsStatic(test binary) = %v, %v; want false (it has an interpreter)", static, err)
	}
	if _, err := elfIsStatic("version_test.go"); err == nil || !strings.Contains(err.Error(), "version_test.go") {
		t.Errorf("elfIsStatic(a text file) error %v, want one naming the file", err)
	}
}
