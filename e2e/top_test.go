package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// tmuxSession is a tmux server of the test's own (its own socket), with one
// session of the given size running a command.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func startTmux(t *testing.T, w, h int, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		testenv.SkipOrFail(t, "tmux is not installed (apt-get install tmux): %v", err)
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("htex-top-%d", os.Getpid())}
	s.tmux("new-session", "-d", "-s", "top", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), command)
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *tmuxSession) capture() string { return s.tmux("capture-pane", "-p", "-t", "top") }

// waitScreen captures the pane until cond holds; it fails with the last
// screen after limit.
func (s *tmuxSession) waitScreen(what string, limit time.Duration, cond func(string) bool) string {
	s.t.Helper()
	end := time.Now().Add(limit)
	for {
		scr := s.capture()
		if cond(scr) {
			return scr
		}
		if time.Now().After(end) {
			s.t.Fatalf("gave up after %s waiting for %s; screen:\n%s", limit, what, scr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTopInTmux runs `htexctl top` in a real terminal (tmux, 80x24)
// against a daemon running a job: the job's progress shows, c asks before
// cancelling, q quits. With HTEX_TOP_SCREENSHOT=FILE it writes the screen
// it saw there (docs/top-screenshot.txt is made that way).
func TestTopInTmux(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--array", "1-300", "--", "sh", "-c", "sleep 0.05; [ {} -ne 3 ] || { echo 'task 3: bad seed' >&2; exit 4; }")
	cmd := fmt.Sprintf("env HTEX_RUN_DIR=%s TERM=xterm-256color %s top; echo \"top exited: $?\"; sleep 600", d.RunDir, d.Bin)
	s := startTmux(t, 80, 24, cmd)
	progress := "job " + job + " "
	scr := s.waitScreen("the job's progress and its failure", 60*time.Second, func(scr string) bool {
		return strings.Contains(scr, progress) && strings.Contains(scr, "/300") && strings.Contains(scr, "exit 4: task 3: bad seed")
	})
	if path := os.Getenv("HTEX_TOP_SCREENSHOT"); path != "" {
		if err := os.WriteFile(path, []byte(scr), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range strings.Split(strings.TrimRight(scr, "\n"), "\n") {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("screen line %d is %d wide: %q", i, n, l)
		}
	}
	s.tmux("send-keys", "-t", "top", "c")
	s.waitScreen("the cancel confirmation", 10*time.Second, func(scr string) bool {
		return strings.Contains(scr, "cancel job "+job+"? ")
	})
	s.tmux("send-keys", "-t", "top", "n")
	s.waitScreen("the cancel refused", 10*time.Second, func(scr string) bool {
		return strings.Contains(scr, "job "+job+" not cancelled")
	})
	// a second job, slow: top selects the newest; c then y cancels it
	slow := d.Submit("--array", "1-50", "--", "sleep", "30")
	s.waitScreen("the second job", 30*time.Second, func(scr string) bool {
		return strings.Contains(scr, "> job "+slow+" ")
	})
	s.tmux("send-keys", "-t", "top", "c")
	s.waitScreen("the cancel confirmation", 10*time.Second, func(scr string) bool {
		return strings.Contains(scr, "cancel job "+slow+"? ")
	})
	s.tmux("send-keys", "-t", "top", "y")
	s.waitScreen("the cancel's answer", 30*time.Second, func(scr string) bool {
		return strings.Contains(scr, "job "+slow+": 50 unfinished tasks cancelled")
	})
	s.tmux("send-keys", "-t", "top", "q")
	s.waitScreen("top to quit", 10*time.Second, func(scr string) bool {
		return strings.Contains(scr, "top exited: 0")
	})
	// the first job ran on: n did not cancel it; the second was cancelled
	d.WaitJob(job)
	for _, r := range d.Results(job) {
		if r.State == "cancelled" {
			t.Fatalf("task %d cancelled although the cancel was refused", r.TaskID)
		}
	}
	d.WaitJob(slow)
	for _, r := range d.Results(slow) {
		if r.State != "cancelled" {
			t.Errorf("task %d of the cancelled job: %s", r.TaskID, r.State)
		}
	}
}

// TestTopOnce: with its output not a terminal, top prints one plain screen
// of the size $COLUMNS and $LINES say, and exits.
func TestTopOnce(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemonEnv(t, localConfig, "COLUMNS=60", "LINES=20")
	job := d.Submit("--array", "1-6", "--", "sh", "-c", "[ {} -ne 4 ] || { echo 'four is unlucky' >&2; exit 9; }")
	d.WaitJob(job)
	out, stderr, code := d.Run("top", "--interval", "200ms")
	if code != 0 {
		t.Fatalf("top: exit %d: %s", code, stderr)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("top to a pipe wrote escape sequences:\n%q", out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > 20 {
		t.Errorf("%d lines, LINES=20", len(lines))
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > 60 {
			t.Errorf("line %d is %d wide, COLUMNS=60: %q", i, n, l)
		}
	}
	for _, want := range []string{"5 succeeded · 1 failed", "> job " + job + " ", "6/6", "exit 9: four is unlucky"} {
		if !strings.Contains(out, want) {
			t.Errorf("top --once lacks %q:\n%s", want, out)
		}
	}
}
