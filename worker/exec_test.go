package worker

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

// testSlot is a slot of a one-slot pool, to run tasks without an
// interchange.
func testSlot(t *testing.T, tailBytes int) *slot {
	t.Helper()
	p, err := New(Options{Layout: &pinning.Layout{Slots: []pinning.Slot{{Env: map[string]string{}}}}, TailBytes: tailBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.devnull.Close() })
	return newSlot(p, p.opt.Layout.Slots[0], environ())
}

// run runs a task on the slot and fails the test if it does not end
// within limit, which only a hang (not slowness) can exceed.
func run(t *testing.T, s *slot, task *wire.Task, limit time.Duration) *wire.Result {
	t.Helper()
	done := make(chan *wire.Result, 1)
	go func() { done <- s.execTask(task, s.env, nil) }()
	select {
	case r := <-done:
		return r
	case <-time.After(limit):
		t.Fatalf("task %v still not reported after %s", task.Argv, limit)
		return nil
	}
}

func TestExecOutputAndExitStatus(t *testing.T) {
	s := testSlot(t, 64<<10)
	r := run(t, s, &wire.Task{Id: 1, Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, time.Minute)
	if string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" {
		t.Errorf("stdout %q stderr %q, want %q and %q", r.Stdout, r.Stderr, "out\n", "err\n")
	}
	if r.ErrorKind != wire.ErrorKind_EXIT || r.ExitCode != 3 {
		t.Errorf("kind %v exit %d, want EXIT 3", r.ErrorKind, r.ExitCode)
	}
}

// More output than a pipe holds must not block the task, and the tail
// keeps the last bytes.
func TestExecLargeOutputKeepsTail(t *testing.T) {
	s := testSlot(t, 1000)
	r := run(t, s, &wire.Task{Id: 1, Argv: []string{"sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' a; printf END"}}, time.Minute)
	if r.ErrorKind != wire.ErrorKind_NONE {
		t.Fatalf("task failed: %v %s", r.ErrorKind, r.Error)
	}
	if len(r.Stdout) != 1000 || !strings.HasSuffix(string(r.Stdout), "aaaEND") {
		t.Errorf("stdout tail is %d bytes ending %q, want 1000 ending in aaaEND", len(r.Stdout), r.Stdout[max(0, len(r.Stdout)-10):])
	}
}

// A process that leaves the task's process group and keeps its stdout
// open must not hold the slot: the task is reported when its leader ends.
func TestExecEscapedWriterDoesNotHoldSlot(t *testing.T) {
	s := testSlot(t, 64<<10)
	r := run(t, s, &wire.Task{Id: 1, Argv: []string{"sh", "-c", "setsid sleep 300 & echo $!"}}, 60*time.Second)
	pid, err := strconv.Atoi(strings.TrimSpace(string(r.Stdout)))
	if err != nil {
		t.Fatalf("stdout %q: %v", r.Stdout, err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if r.ErrorKind != wire.ErrorKind_NONE {
		t.Errorf("task failed: %v %s", r.ErrorKind, r.Error)
	}
}

func TestExecTimeoutKillsGroup(t *testing.T) {
	s := testSlot(t, 64<<10)
	r := run(t, s, &wire.Task{Id: 1, TimeoutMs: 200, Argv: []string{"sh", "-c", "sleep 300 & echo $!; sleep 300"}}, 60*time.Second)
	if r.ErrorKind != wire.ErrorKind_TIMEOUT {
		t.Errorf("kind %v (%s), want TIMEOUT", r.ErrorKind, r.Error)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(r.Stdout)))
	if err != nil {
		t.Fatalf("stdout %q: %v", r.Stdout, err)
	}
	for i := 0; ; i++ {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break // gone, or a zombie waiting for its new parent
		}
		if i == 100 {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("the task's background child %d still runs after the task timed out", child)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestExecMissingCommandIsSpawnError(t *testing.T) {
	s := testSlot(t, 64<<10)
	r := run(t, s, &wire.Task{Id: 1, Argv: []string{"htex-no-such-command"}}, time.Minute)
	if r.ErrorKind != wire.ErrorKind_SPAWN || !strings.Contains(r.Error, "htex-no-such-command") {
		t.Errorf("kind %v error %q, want SPAWN naming the command", r.ErrorKind, r.Error)
	}
}

func TestExecOutputToFiles(t *testing.T) {
	s := testSlot(t, 4)
	dir := t.TempDir()
	r := run(t, s, &wire.Task{Id: 1, Argv: []string{"sh", "-c", "echo hello; echo oops >&2"},
		StdoutPath: dir + "/out", StderrPath: dir + "/err"}, time.Minute)
	if string(r.Stdout) != "llo\n" || string(r.Stderr) != "ops\n" {
		t.Errorf("tails %q %q, want the last 4 bytes of each file", r.Stdout, r.Stderr)
	}
}

// TestSlotEnvUnset: an AMD slot's task sees its ROCR_VISIBLE_DEVICES and
// none of the node-wide device lists the pool inherited, except one the task
// asked for itself.
func TestSlotEnvUnset(t *testing.T) {
	set, unset := pinning.AcceleratorEnv(pinning.VendorAMD, "3")
	p, err := New(Options{Layout: &pinning.Layout{Slots: []pinning.Slot{{Accelerator: "3", Env: set, Unset: unset}}}, TailBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.devnull.Close() })
	base := []string{"PATH=" + os.Getenv("PATH"), "ROCR_VISIBLE_DEVICES=0,1,2,3,4,5,6,7",
		"CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7", "HIP_VISIBLE_DEVICES=0,1", "GPU_DEVICE_ORDINAL=0,1,2,3,4,5,6,7", "KEEP=me"}
	s := newSlot(p, p.opt.Layout.Slots[0], base)

	show := "env | grep -E '^(ROCR|CUDA|HIP|GPU|ZE|KEEP)' | sort"
	r := run(t, s, &wire.Task{Id: 1, Argv: []string{"sh", "-c", show}}, time.Minute)
	if want := "KEEP=me\nROCR_VISIBLE_DEVICES=3\n"; string(r.Stdout) != want {
		t.Errorf("task env:\n%s\nwant:\n%s", r.Stdout, want)
	}
	r = run(t, s, &wire.Task{Id: 2, Argv: []string{"sh", "-c", show}, Env: []string{"HIP_VISIBLE_DEVICES=0"}}, time.Minute)
	if want := "HIP_VISIBLE_DEVICES=0\nKEEP=me\nROCR_VISIBLE_DEVICES=3\n"; string(r.Stdout) != want {
		t.Errorf("task env with its own HIP_VISIBLE_DEVICES:\n%s\nwant:\n%s", r.Stdout, want)
	}
}

// TestClassify: the pool's own verdicts come before the process's status.
func TestClassify(t *testing.T) {
	exited := func(code int) syscall.WaitStatus { return syscall.WaitStatus(code << 8) }
	killed := func(sig syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(sig) }
	cases := []struct {
		name     string
		o        outcome
		kind     wire.ErrorKind
		exit     int32
		signal   int32
		errorMsg string
	}{
		{"success", outcome{status: exited(0)}, wire.ErrorKind_NONE, 0, 0, ""},
		{"exit 3", outcome{status: exited(3)}, wire.ErrorKind_EXIT, 3, 0, "exit status 3"},
		{"a shell's SIGTERM child", outcome{status: exited(143)}, wire.ErrorKind_EXIT, 143, 0, "exit status 143"},
		{"killed", outcome{status: killed(syscall.SIGKILL)}, wire.ErrorKind_SIGNAL, -1, 9, "killed by signal killed"},
		{"time limit over the signal", outcome{timedOut: true, timeout: 1500 * time.Millisecond, status: killed(syscall.SIGTERM)},
			wire.ErrorKind_TIMEOUT, -1, 0, "killed at its time limit of 1.5s"},
		{"cancel over the time limit", outcome{cancelled: true, timedOut: true, status: killed(syscall.SIGTERM)},
			wire.ErrorKind_CANCELLED, -1, 0, "cancelled while running"},
		{"failed wait over all", outcome{waitErr: syscall.ECHILD, cancelled: true}, wire.ErrorKind_SPAWN, -1, 0, "wait: no child processes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := &wire.Result{}
			classify(res, c.o)
			if res.ErrorKind != c.kind || res.ExitCode != c.exit || res.Signal != c.signal || res.Error != c.errorMsg {
				t.Errorf("got kind %v exit %d signal %d %q, want %v %d %d %q",
					res.ErrorKind, res.ExitCode, res.Signal, res.Error, c.kind, c.exit, c.signal, c.errorMsg)
			}
		})
	}
}
