package daemon

// One owner per run directory. Two daemons on one run directory re-queue
// each other's running tasks, rewrite connection.json and run tasks twice,
// so a daemon holds two things before it touches the journal's tasks:
//
//   - a kernel lock (an open-file-description fcntl lock, F_OFD_SETLK) on
//     <run-dir>/daemon.lock, which the kernel drops when the process dies,
//     however it dies, and which works across PID namespaces (containers) on
//     one host, and across hosts on file systems that honour fcntl locks
//     (docs/run-directory.md lists which);
//   - a lease in the journal's meta table (host, boot id, pid, heartbeat),
//     renewed every leaseRenew, so that a daemon on another host is refused
//     even where the file system does not share locks, and told who holds
//     the run directory. A stale lease of another host is taken over only
//     once it has expired.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/rundir"
)

// Lease timing: renewed every leaseRenew, stale after leaseTTL without a
// renewal.
const (
	leaseRenew = 10 * time.Second
	leaseTTL   = 60 * time.Second
	leaseKey   = "lease"
)

// lease is the owner record kept in the journal's meta table.
type lease struct {
	Host   string    `json:"host"`
	BootID string    `json:"boot_id"`
	Pid    int       `json:"pid"`
	Token  string    `json:"token"` // random per daemon start
	Since  time.Time `json:"since"`
	Beat   time.Time `json:"heartbeat"`
}

func (l *lease) String() string {
	return fmt.Sprintf("the daemon on host %s (pid %d, since %s)", l.Host, l.Pid, l.Since.UTC().Format(time.RFC3339))
}

// leaseVerdict is decideLease's answer.
type leaseVerdict struct {
	Take bool
	Why  string // why taken, or why refused
}

// decideLease says whether me may take the run directory whose journal
// holds cur (nil: none). lockHeld: this process holds the kernel lock, so no
// live daemon on this host (same boot) holds the run directory. It reads no
// clock and no file.
func decideLease(cur *lease, me lease, now time.Time, ttl time.Duration, lockHeld bool) leaseVerdict {
	switch {
	case cur == nil:
		return leaseVerdict{Take: true, Why: "no lease"}
	case cur.Token == me.Token:
		return leaseVerdict{Take: true, Why: "ours"}
	case cur.Host == me.Host && cur.BootID == me.BootID && lockHeld:
		return leaseVerdict{Take: true, Why: "its holder on this host is gone (the kernel lock was free)"}
	case cur.Host == me.Host && cur.BootID != me.BootID && cur.BootID != "" && me.BootID != "":
		return leaseVerdict{Take: true, Why: "this host rebooted since the lease was taken"}
	}
	age := now.Sub(cur.Beat)
	if age > ttl {
		return leaseVerdict{Take: true, Why: fmt.Sprintf("expired (last heartbeat %s ago, limit %s)", age.Round(time.Second), ttl)}
	}
	return leaseVerdict{Why: fmt.Sprintf("%s holds it: last heartbeat %s ago; a lease of another host is taken over only %s after its last heartbeat, in %s",
		cur, age.Round(time.Second), ttl, (ttl - age).Round(time.Second))}
}

// ErrHeld reports a run directory that another daemon owns.
var ErrHeld = errors.New("run directory held by another daemon")

// lockRunDir takes the kernel lock on the run directory's lock file. On a
// file system without fcntl locks it goes on with the lease alone (warn).
func lockRunDir(dir string) (*os.File, bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, rundir.LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open lock file: %w", err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	switch {
	case err == nil:
		return f, true, nil
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
		f.Close()
		return nil, false, ErrHeld
	case errors.Is(err, unix.ENOLCK), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
		return f, false, nil // no locks here: the lease alone decides
	}
	f.Close()
	return nil, false, fmt.Errorf("lock %s: %w", f.Name(), err)
}

// readLease reads the lease from the journal (nil when none or unreadable
// as a lease, which an older htex never wrote).
func readLease(raw string) *lease {
	if raw == "" {
		return nil
	}
	var l lease
	if json.Unmarshal([]byte(raw), &l) != nil {
		return nil
	}
	return &l
}

// holderOf names the daemon that holds dir, for the refusal message.
func holderOf(dir string) string {
	jr, err := journal.Open(filepath.Join(dir, rundir.JournalFile))
	if err != nil {
		return "another daemon"
	}
	defer jr.Close()
	raw, _ := jr.Meta(leaseKey)
	if l := readLease(raw); l != nil {
		return fmt.Sprintf("%s, last heartbeat %s ago", l, time.Since(l.Beat).Round(time.Second))
	}
	return "another daemon"
}

// takeLease takes the journal's lease for me, or says who holds it.
func takeLease(jr *journal.Journal, dir string, me lease, lockHeld bool, log func(string, ...any)) error {
	for range 3 { // another daemon may swap between our read and our swap
		raw, err := jr.Meta(leaseKey)
		if err != nil {
			return err
		}
		cur := readLease(raw)
		v := decideLease(cur, me, time.Now(), leaseTTL, lockHeld)
		if !v.Take {
			return fmt.Errorf("%s: %w: %s; stop it with `htexctl stop --run-dir %s` on that host", dir, ErrHeld, v.Why, dir)
		}
		b, _ := json.Marshal(me)
		if _, ok, err := jr.SwapMeta(leaseKey, raw, string(b)); err != nil {
			return fmt.Errorf("take the lease of %s: %w", dir, err)
		} else if ok {
			if cur != nil {
				log("took over the run directory's lease", "from", cur.String(), "why", v.Why)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: %w: its lease changed three times while this daemon tried to take it", dir, ErrHeld)
}

// keepLease renews the lease every leaseRenew until ctx ends; it calls lost
// when another daemon has taken the lease (this daemon must stop).
func keepLease(ctx context.Context, jr *journal.Journal, me lease, lost func(why string), warn func(string, ...any)) {
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	mine, _ := json.Marshal(me)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := me
		next.Beat = time.Now().UTC()
		b, _ := json.Marshal(next)
		cur, ok, err := jr.SwapMeta(leaseKey, string(mine), string(b))
		switch {
		case err != nil:
			warn("cannot renew the run directory's lease", "err", err)
		case !ok:
			holder := "another daemon"
			if l := readLease(cur); l != nil {
				holder = l.String()
			}
			lost(holder + " has taken this run directory's lease")
			return
		default:
			mine = b
		}
	}
}

// releaseLease removes our lease (clean stop), so a restart anywhere is at once.
func releaseLease(jr *journal.Journal, me lease) {
	raw, err := jr.Meta(leaseKey)
	if err != nil {
		return
	}
	if l := readLease(raw); l != nil && l.Token == me.Token {
		jr.SwapMeta(leaseKey, raw, "")
	}
}

// newLease describes this process.
func newLease() lease {
	host, _ := os.Hostname()
	tok := make([]byte, 8)
	rand.Read(tok)
	now := time.Now().UTC()
	return lease{Host: host, BootID: bootID(), Pid: os.Getpid(), Token: hex.EncodeToString(tok), Since: now, Beat: now}
}

// bootID is the kernel's boot id: it changes with every boot, so a lease of
// this host from an earlier boot is stale whatever its pid.
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// writePidFile records the pid for people; ownership is the lock's job.
func writePidFile(dir string) {
	os.WriteFile(filepath.Join(dir, rundir.PidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
}
