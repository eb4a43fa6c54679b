package testenv

import (
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
)

// StaticBinary returns dist/htexctl, the static binary that
// scripts/build-static.sh builds (HTEX_STATIC_BINARY overrides the path).
// It skips, or fails in CI, when the binary is missing or not static.
func StaticBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("HTEX_STATIC_BINARY")
	if p == "" {
		p = filepath.Join(RepoRoot(), "dist", "htexctl")
	}
	if _, err := os.Stat(p); err != nil {
		SkipOrFail(t, "no static htexctl at %s: run scripts/build-static.sh", p)
	}
	if ok, why := isStaticELF(p); !ok {
		SkipOrFail(t, "%s is not a static executable (%s): run scripts/build-static.sh", p, why)
	}
	return p
}

// StaticBusybox returns Debian busybox-static's /bin/busybox.
func StaticBusybox(t testing.TB) string {
	t.Helper()
	p := "/bin/busybox"
	if ok, why := isStaticELF(p); !ok {
		SkipOrFail(t, "%s: %s (apt-get install busybox-static)", p, why)
	}
	return p
}

func isStaticELF(path string) (bool, string) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err.Error()
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, "it has a program interpreter"
		}
	}
	return true, ""
}
