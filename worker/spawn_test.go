package worker

import (
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
)

func TestSpawnError(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ cwd, want string }{
		{dir + "/not-on-this-node", "working directory " + dir + "/not-on-this-node"},
		{dir, "start prog: no such file or directory"},
		{"", "start prog: no such file or directory"},
	}
	for _, c := range cases {
		err := spawnError("prog", c.cwd, syscall.ENOENT)
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("spawnError(cwd %q) = %q, want it to contain %q", c.cwd, err, c.want)
		}
		if !errors.Is(err, syscall.ENOENT) && c.cwd != cases[0].cwd {
			t.Errorf("spawnError(cwd %q) does not wrap the exec error", c.cwd)
		}
	}
}

func TestEmptyInputReadsEOF(t *testing.T) {
	f, err := emptyInput()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("read %d bytes, %v; want 0, EOF", n, err)
	}
}
