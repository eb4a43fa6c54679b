package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A block's job id is a pid, and pids are reused: after a restart the pid
// recorded for a block may belong to an unrelated process. A block's
// process is therefore identified by its pid, its start time (field 22 of
// /proc/PID/stat, in clock ticks since boot: proc(5)) and the boot id
// (/proc/sys/kernel/random/boot_id), written next to the block's output
// when it starts. The provider signals a process only when all three match.

const identFile = "process"

// ident is what identifies a block's process group leader.
type ident struct {
	Pid       int
	StartTime uint64
	BootID    string
}

func (id ident) String() string {
	return fmt.Sprintf("%d %d %s\n", id.Pid, id.StartTime, id.BootID)
}

func parseIdent(s string) (ident, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return ident{}, fmt.Errorf("process identity %q: want PID STARTTIME BOOTID", strings.TrimSpace(s))
	}
	pid, err1 := strconv.Atoi(f[0])
	st, err2 := strconv.ParseUint(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ident{}, fmt.Errorf("process identity %q: %w", strings.TrimSpace(s), err)
	}
	return ident{Pid: pid, StartTime: st, BootID: f[2]}, nil
}

// identOf reads the identity of a live process; an error when it is gone.
func identOf(pid int) (ident, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ident{}, err
	}
	st, err := startTime(string(b))
	if err != nil {
		return ident{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return ident{Pid: pid, StartTime: st, BootID: bootID()}, nil
}

// startTime takes field 22 of a /proc/PID/stat line. The command name
// (field 2) is in parentheses and may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func startTime(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 20", len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

func writeIdent(dir string, id ident) error {
	tmp := filepath.Join(dir, identFile+".tmp")
	if err := os.WriteFile(tmp, []byte(id.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, identFile))
}

// ours reports whether pid is still the block process recorded in dir:
// same pid, same start time, same boot. A block without a recorded
// identity (no folder, or from an htex that did not write one) is never
// ours: better leave a process alone than signal a stranger.
func ours(dir string, pid int) bool {
	if dir == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, identFile))
	if err != nil {
		return false
	}
	want, err := parseIdent(string(b))
	if err != nil || want.Pid != pid {
		return false
	}
	got, err := identOf(pid)
	return err == nil && got == want
}
