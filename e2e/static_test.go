package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// chrootNode is an empty directory standing in for a compute node whose
// image has nothing htex needs: dist/htexctl alone, a static busybox as
// /bin/sh, and /proc; the run directory arrives as on a shared file system
// (a bind mount). No libzmq, no glibc, no /etc, no /dev.
type chrootNode struct {
	root, runDir string
}

func newChrootNode(t *testing.T, runDir string) *chrootNode {
	t.Helper()
	if os.Getuid() != 0 {
		testenv.SkipOrFail(t, "chroot and mount need root")
	}
	for _, tool := range []string{"unshare", "chroot", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "%s not found (util-linux, coreutils)", tool)
		}
	}
	bin, busybox := testenv.StaticBinary(t), testenv.StaticBusybox(t)
	root := t.TempDir()
	for _, d := range []string{"bin", "proc", "rundir"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyExecutable(t, bin, filepath.Join(root, "htexctl"))
	copyExecutable(t, busybox, filepath.Join(root, "bin", "sh"))
	return &chrootNode{root: root, runDir: runDir}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// command runs /htexctl ARGS inside the chroot, in a mount namespace of its
// own (so /proc and the run directory are unmounted when it ends), with
// the run directory at /rundir. The process is htexctl itself: unshare and
// sh exec into chroot, which execs htexctl, so its pid is htexctl's.
func (n *chrootNode) command(args ...string) *exec.Cmd {
	script := `mount -t proc proc "$1/proc" && mount --bind "$2" "$1/rundir" && root=$1 && shift 2 && exec chroot "$root" /htexctl "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", n.root, n.runDir}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HTEX_RUN_DIR=/rundir"}
	return cmd
}

// TestStaticWorkerInEmptyChroot: the static htexctl runs a pool on a node
// image with nothing but itself, /bin/sh and /proc, against a daemon
// outside, over CURVE; tasks run there and return their output; and a
// client inside the same image submits.
func TestStaticWorkerInEmptyChroot(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, secNoBlockConfig)
	if enc := secConnection(t, d.RunDir)["encrypted"]; enc != true {
		t.Fatalf("connection.json encrypted = %v, want true (CURVE is the default)", enc)
	}
	node := newChrootNode(t, d.RunDir)

	var poolErr bytes.Buffer
	pool := node.command("worker", "--block-id", "5")
	pool.Stderr = &poolErr
	if err := pool.Start(); err != nil {
		t.Fatal(err)
	}
	var poolErrWait error
	poolDone := make(chan struct{})
	go func() { poolErrWait = pool.Wait(); close(poolDone) }()
	t.Cleanup(func() {
		pool.Process.Signal(syscall.SIGKILL)
		<-poolDone
	})
	deadline := time.Now().Add(time.Minute)
	for len(d.Status().Pools) == 0 {
		select {
		case <-poolDone:
			t.Fatalf("the pool in the chroot exited: %v\n%s", poolErrWait, poolErr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool in the chroot did not register within a minute\n%s", poolErr.String())
		}
	}

	// Submitted from outside: the output proves the task ran in the chroot
	// (only there is /htexctl a file).
	job := d.Submit("--array", "1-20", "--cwd", "/", "--", "sh", "-c", `test -f /htexctl && echo "inside {}"`)
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%+v\n%s", code, d.Results(job)[0], poolErr.String())
	}
	checkChrootResults(t, d.Results(job), 20, "inside")

	// Submitted from inside, with the run directory's client key.
	sub := node.command("submit", "--array", "1-3", "--cwd", "/", "--", "sh", "-c", `echo "from-chroot {}"`)
	out, err := sub.CombinedOutput()
	if err != nil {
		t.Fatalf("submit inside the chroot: %v\n%s", err, out)
	}
	job = strings.TrimSpace(string(out))
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait %q: exit %d", job, code)
	}
	checkChrootResults(t, d.Results(job), 3, "from-chroot")

	ver, err := node.command("version").Output()
	if err != nil || !strings.Contains(string(ver), "static: yes") {
		t.Errorf("version inside the chroot: %v\n%s", err, ver)
	}
}

func checkChrootResults(t *testing.T, rs []testenv.Result, n int, word string) {
	t.Helper()
	if len(rs) != n {
		t.Fatalf("%d results, want %d", len(rs), n)
	}
	for _, r := range rs {
		if r.ArrayIndex == nil {
			t.Fatalf("task %d has no array index", r.TaskID)
		}
		want := fmt.Sprintf("%s %d", word, *r.ArrayIndex)
		if r.State != "succeeded" || strings.TrimSpace(r.Stdout) != want || r.BlockID != 5 {
			t.Errorf("task %d: state %s, block %d, stdout %q; want succeeded on block 5 with %q", r.TaskID, r.State, r.BlockID, r.Stdout, want)
		}
	}
}
