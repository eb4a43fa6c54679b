package worker

import (
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/wire"
)

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// Result forms: how a task can end.
	ok := func() *wire.Result { return &wire.Result{} }
	exit := func(code int32) *wire.Result {
		return &wire.Result{ErrorKind: wire.ErrorKind_EXIT, ExitCode: code}
	}
	sig := func(s syscall.Signal) *wire.Result {
		return &wire.Result{ErrorKind: wire.ErrorKind_SIGNAL, ExitCode: -1, Signal: int32(s)}
	}
	kind := func(k wire.ErrorKind) *wire.Result { return &wire.Result{ErrorKind: k, ExitCode: -1} }
	never := time.Time{}

	cases := []struct {
		name       string
		r          *wire.Result
		end, now   time.Time
		terminated time.Time
		want       fate
	}{
		// The pool has not been signalled.
		{"success is reported at once", ok(), at(0), at(0), never, report},
		{"shell's SIGTERM exit 143 is held", exit(143), at(0), at(0), never, hold},
		{"plain failure exit 1 is held", exit(1), at(0), at(500 * time.Millisecond), never, hold},
		{"death by SIGTERM is held", sig(syscall.SIGTERM), at(0), at(999 * time.Millisecond), never, hold},
		{"death by SIGSEGV is held too", sig(syscall.SIGSEGV), at(0), at(0), never, hold},
		{"failure reported once the grace has passed", exit(143), at(0), at(signalGrace), never, report},
		{"signal death reported once the grace has passed", sig(syscall.SIGKILL), at(0), at(2 * signalGrace), never, report},
		{"time limit is the pool's own verdict", kind(wire.ErrorKind_TIMEOUT), at(0), at(0), never, report},
		{"cancel is the pool's own verdict", kind(wire.ErrorKind_CANCELLED), at(0), at(0), never, report},
		{"spawn error is reported at once", kind(wire.ErrorKind_SPAWN), at(0), at(0), never, report},

		// The pool got SIGTERM at t0+1s: the batch system is ending it.
		{"exit 143 just after the pool's SIGTERM is lost", exit(143), at(1010 * time.Millisecond), at(1020 * time.Millisecond), at(time.Second), lose},
		{"exit 143 just before the pool's SIGTERM is lost", exit(143), at(990 * time.Millisecond), at(1020 * time.Millisecond), at(time.Second), lose},
		{"exit 143 a grace before the SIGTERM is lost", exit(143), at(0), at(1020 * time.Millisecond), at(time.Second), lose},
		{"exit 1 near the SIGTERM is lost", exit(1), at(900 * time.Millisecond), at(time.Second), at(time.Second), lose},
		{"SIGTERM death near the SIGTERM is lost", sig(syscall.SIGTERM), at(time.Second), at(time.Second), at(time.Second), lose},
		{"SIGKILL death after the SIGTERM is lost", sig(syscall.SIGKILL), at(6 * time.Second), at(6 * time.Second), at(time.Second), lose},
		{"exit 0 after the SIGTERM is lost (a trap may exit 0)", ok(), at(1500 * time.Millisecond), at(1500 * time.Millisecond), at(time.Second), lose},
		{"success well before the SIGTERM is reported", ok(), at(-time.Second), at(time.Second), at(time.Second), report},
		{"failure well before the SIGTERM is reported", exit(2), at(-time.Millisecond), at(time.Second), at(time.Second), report},
		{"time limit near the SIGTERM is still the pool's verdict", kind(wire.ErrorKind_TIMEOUT), at(time.Second), at(time.Second), at(time.Second), report},
		{"cancel near the SIGTERM is still the pool's verdict", kind(wire.ErrorKind_CANCELLED), at(time.Second), at(time.Second), at(time.Second), report},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.r.EndUnixUs = c.end.UnixMicro()
			if got := judge(c.r, c.now, c.terminated); got != c.want {
				t.Errorf("judge(%v ending %v, now %v, terminated %v) = %v, want %v",
					c.r.ErrorKind, c.end.Sub(t0), c.now.Sub(t0), c.terminated, got, c.want)
			}
		})
	}
}

// TestJudgeHeldThenLost follows one result through time: held while the
// pool lives, lost when the pool's SIGTERM comes within the grace, and
// reported when it does not.
func TestJudgeHeldThenLost(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	for _, form := range []*wire.Result{
		{},
		{ErrorKind: wire.ErrorKind_EXIT, ExitCode: 143},
		{ErrorKind: wire.ErrorKind_EXIT, ExitCode: 1},
		{ErrorKind: wire.ErrorKind_SIGNAL, ExitCode: -1, Signal: int32(syscall.SIGTERM)},
	} {
		form.EndUnixUs = t0.UnixMicro()
		success := form.ErrorKind == wire.ErrorKind_NONE
		first := judge(form, t0, time.Time{})
		if success && first != report || !success && first != hold {
			t.Errorf("%v at its end: %v", form.ErrorKind, first)
		}
		if got := judge(form, t0.Add(300*time.Millisecond), t0.Add(200*time.Millisecond)); got != lose {
			t.Errorf("%v, pool signalled 200ms after: %v, want lose", form.ErrorKind, got)
		}
		if got := judge(form, t0.Add(3*signalGrace), t0.Add(2*signalGrace)); got != report {
			t.Errorf("%v, pool signalled 2 graces after: %v, want report", form.ErrorKind, got)
		}
	}
}
