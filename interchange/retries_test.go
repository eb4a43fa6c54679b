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
