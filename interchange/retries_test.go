package interchange

import (
	"strings"
	"testing"

	"github.com/htex/htex/wire"
)

// TestValidateSpecRetries: a task keeps its retries in 16 bits, so a
// spec's retries are refused above wire.MaxRetries, naming the value.
func TestValidateSpecRetries(t *testing.T) {
	for _, tc := range []struct {
		retries int32
		want    string // "" = accepted
	}{
		{-1, ""}, // the executor's default
		{0, ""},
		{wire.MaxRetries, ""},
		{wire.MaxRetries + 1, "task 3: retries 10001: must be in [0, 10000]"},
		{1 << 20, "task 3: retries 1048576: must be in [0, 10000]"},
		{-2, "task 3: retries -2: must be in [0, 10000]"},
	} {
		err := validateSpec(3, &wire.TaskSpec{Argv: []string{"true"}, Retries: tc.retries})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("retries %d refused: %v", tc.retries, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("retries %d: err %v, want %q", tc.retries, err, tc.want)
		}
	}
}

// TestValidateSpecTimeout: a time limit a Go duration cannot hold would
// wrap around in the pool's deadline (and kill the task at once); it is
// refused, as a negative one is.
func TestValidateSpecTimeout(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want string // "" = accepted
	}{
		{0, ""}, // no limit
		{90_000, ""},
		{wire.MaxTimeoutMs, ""},
		{wire.MaxTimeoutMs + 1, "task 3: timeout 9223372036855ms: must be in [0, 9223372036854]"},
		{-1, "task 3: timeout -1ms: must be in [0, 9223372036854]"},
	} {
		err := validateSpec(3, &wire.TaskSpec{Argv: []string{"true"}, TimeoutMs: tc.ms, Retries: -1})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("timeout %dms refused: %v", tc.ms, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("timeout %dms: err %v, want %q", tc.ms, err, tc.want)
		}
	}
}

// TestRestoredBudget: a journal of an older htex may hold more retries
// than a task keeps; they are bounded (and reported), attempts with them.
func TestRestoredBudget(t *testing.T) {
	for _, tc := range []struct {
		retries, attempts int
		r, a              int16
		clamped           bool
	}{
		{2, 0, 2, 0, false},
		{2, 2, 2, 2, false},
		{wire.MaxRetries, wire.MaxRetries, wire.MaxRetries, wire.MaxRetries, false},
		{wire.MaxRetries + 1, 3, wire.MaxRetries, 3, true},
		{1 << 30, 50000, wire.MaxRetries, wire.MaxRetries + 1, true},
		{-3, 0, 0, 0, true},
	} {
		r, a, c := restoredBudget(tc.retries, tc.attempts)
		if r != tc.r || a != tc.a || c != tc.clamped {
			t.Errorf("restoredBudget(%d, %d) = %d, %d, %v, want %d, %d, %v",
				tc.retries, tc.attempts, r, a, c, tc.r, tc.a, tc.clamped)
		}
	}
}
