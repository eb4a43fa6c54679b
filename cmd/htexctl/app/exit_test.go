package app

import (
	"path/filepath"
	"testing"
)

// TestMainReturnsExitStatus: a failing verb makes Main return its status
// (so that deferred cleanup runs) instead of exiting the process inside the
// CLI's error handler, which would end this test binary.
func TestMainReturnsExitStatus(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.toml")
	if got := Main([]string{"htexctl", "config", "check", missing}); got != ExitUsage && got != ExitFailed {
		t.Fatalf("Main(config check missing file) = %d, want %d or %d", got, ExitUsage, ExitFailed)
	}
	if got := Main([]string{"htexctl", "plan", "--no-such-flag"}); got == 0 {
		t.Fatalf("Main(bad flag) = 0, want a failure status")
	}
}
