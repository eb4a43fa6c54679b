package execx

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExecRunIn(t *testing.T) {
	dir := t.TempDir()
	res, err := RunIn(context.Background(), Exec{}, dir, "", "pwd")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(dir)
	if got := strings.TrimSpace(res.Stdout); got != want && got != dir {
		t.Errorf("pwd = %q, want %q", got, dir)
	}
	// "" keeps the runner's own directory.
	cwd, _ := os.Getwd()
	res, err = Exec{}.RunIn(context.Background(), "", "", "pwd")
	if err != nil || strings.TrimSpace(res.Stdout) != cwd {
		t.Errorf("RunIn with no dir ran in %q (%v), want %q", res.Stdout, err, cwd)
	}
}

func TestFakeRunInRecordsDir(t *testing.T) {
	f := &Fake{}
	RunIn(context.Background(), f, "/blocks/1", "", "sbatch", "x")
	f.Run(context.Background(), "", "squeue")
	if len(f.Calls) != 2 || f.Calls[0].Dir != "/blocks/1" || f.Calls[1].Dir != "" {
		t.Errorf("calls %+v", f.Calls)
	}
}

// plain is a Runner without RunIn.
type plain struct{ f *Fake }

func (p plain) Run(ctx context.Context, stdin, name string, args ...string) (Result, error) {
	return p.f.Run(ctx, stdin, name, args...)
}

func TestRunInFallsBack(t *testing.T) {
	f := &Fake{}
	if _, err := RunIn(context.Background(), plain{f}, "/x", "", "true"); err != nil {
		t.Fatal(err)
	}
	if len(f.Calls) != 1 || f.Calls[0].Name != "true" {
		t.Errorf("calls %+v", f.Calls)
	}
}
