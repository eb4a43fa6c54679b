package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// MountTmpfs mounts a tmpfs of the given size ("20m") on a new folder and
// unmounts it when the test ends. It needs root: elsewhere it skips, and
// fails in CI.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		SkipOrFail(t, "mount a %s tmpfs (needs root): %v: %s", size, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// StartDaemonIn is StartDaemonEnv with a run directory of the caller's
// choosing (a small file system, a shared folder).
func StartDaemonIn(t testing.TB, runDir, configTOML string, env ...string) *Daemon {
	t.Helper()
	base := t.TempDir()
	d := &Daemon{t: t, Bin: Binary(t), RunDir: runDir, Config: filepath.Join(base, "site.toml"),
		LogPath: filepath.Join(base, "serve.log"), Env: env}
	if err := os.WriteFile(d.Config, []byte(configTOML), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(d.Stop)
	return d
}

// WaitExit waits up to limit for the daemon process to exit and reports
// whether it did.
func (d *Daemon) WaitExit(limit time.Duration) bool {
	select {
	case err := <-d.done:
		d.done <- err
		return true
	case <-time.After(limit):
		return false
	}
}
