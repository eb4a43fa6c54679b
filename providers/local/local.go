// Package local runs blocks as local process groups: the batch script runs
// under bash in its own session, with its output in the block's folder and
// its exit status written next to it, so that a restarted daemon can still
// tell how a block it did not start ended.
package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/htex/htex/providers"
)

// Local is the local provider. The job id of a block is the pid of its
// process group leader.
type Local struct {
	mu   sync.Mutex
	dirs map[string]string // job id -> block folder
	wg   sync.WaitGroup
}

// New returns a local provider.
func New() *Local { return &Local{dirs: map[string]string{}} }

// Name implements providers.Provider.
func (l *Local) Name() string { return "local" }

const exitFile = "exitcode"

// Submit starts the script and returns its pid.
func (l *Local) Submit(_ context.Context, s providers.Submission) (string, error) {
	out, err := os.OpenFile(filepath.Join(s.Dir, "stdout"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("local submit: %w", err)
	}
	defer out.Close()
	errf, err := os.OpenFile(filepath.Join(s.Dir, "stderr"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("local submit: %w", err)
	}
	defer errf.Close()
	// The wrapper records the script's exit status for Status.
	cmd := exec.Command("/bin/sh", "-c", `bash "$1"; echo $? > "$2.tmp" && mv "$2.tmp" "$2"`, "htex-block",
		s.ScriptPath, filepath.Join(s.Dir, exitFile))
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = out, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", &providers.CommandError{Command: "bash " + s.ScriptPath, ExitCode: -1, Err: err}
	}
	id := strconv.Itoa(cmd.Process.Pid)
	self, err := identOf(cmd.Process.Pid)
	if err == nil {
		err = writeIdent(s.Dir, self)
	}
	if err != nil { // without it no later daemon could ever signal the block
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		return "", fmt.Errorf("local submit: record the block's process: %w", err)
	}
	l.mu.Lock()
	l.dirs[id] = s.Dir
	l.mu.Unlock()
	l.wg.Add(1)
	go func() { // reaps the child; ends when the block ends
		defer l.wg.Done()
		cmd.Wait()
	}()
	return id, nil
}

// Adopt tells the provider where the folder of a block started by an
// earlier daemon is, so that Status can read its exit status.
func (l *Local) Adopt(jobID, dir string) {
	l.mu.Lock()
	l.dirs[jobID] = dir
	l.mu.Unlock()
}

// Status reports running while the process lives, then the exit status.
func (l *Local) Status(_ context.Context, ids []string) (map[string]providers.Status, error) {
	out := make(map[string]providers.Status, len(ids))
	for _, id := range ids {
		l.mu.Lock()
		dir, known := l.dirs[id]
		l.mu.Unlock()
		if known {
			if b, err := os.ReadFile(filepath.Join(dir, exitFile)); err == nil {
				code, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				st := providers.Status{State: providers.Completed, ExitCode: code}
				if code != 0 {
					st.State = providers.Failed
					st.Message = fmt.Sprintf("block script exited with status %d", code)
					if code > 128 {
						st.State = providers.Cancelled
						st.Message = fmt.Sprintf("block script killed by signal %d", code-128)
					}
				}
				out[id] = st
				continue
			}
		}
		pid, err := strconv.Atoi(id)
		if err != nil {
			out[id] = providers.Status{State: providers.Unknown, Message: "not a local job id"}
			continue
		}
		switch {
		case known && ours(dir, pid):
			out[id] = providers.Status{State: providers.Running}
		case known:
			// gone without writing its status (killed with its wrapper), or
			// the pid now belongs to another process
			out[id] = providers.Status{State: providers.Cancelled, Message: "block process is gone (killed, or its pid now belongs to another process)"}
		default:
			out[id] = providers.Status{State: providers.Unknown, Message: "no block folder known for this pid: not signalled"}
		}
	}
	return out, nil
}

// Cancel sends SIGTERM to each block's process group, then SIGKILL; only
// to a group whose leader is still the process the block started (ident.go).
func (l *Local) Cancel(_ context.Context, ids []string) error {
	var errs []error
	for _, id := range ids {
		pid, err := strconv.Atoi(id)
		if err != nil || pid <= 1 {
			errs = append(errs, fmt.Errorf("local cancel: bad job id %q", id))
			continue
		}
		l.mu.Lock()
		dir := l.dirs[id]
		l.mu.Unlock()
		if !ours(dir, pid) {
			continue // ended already, or the pid is another process's now
		}
		if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("local cancel %s: %w", id, err))
			continue
		}
		time.AfterFunc(5*time.Second, func() {
			if ours(dir, pid) {
				syscall.Kill(-pid, syscall.SIGKILL)
			}
		})
	}
	return errors.Join(errs...)
}

// Wait waits for the reapers of blocks this provider started.
func (l *Local) Wait() { l.wg.Wait() }
