package app

import (
	"strings"
	"testing"
)

// bench's own flags are refused before anything starts, naming the flag
// (each of the large values used to end in a fatal out-of-memory error).
func TestBenchFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--repeat", "0"}, "bench: --repeat 0: want 1 to 1000"},
		{[]string{"--repeat", "1000000000000"}, "bench: --repeat 1000000000000: want 1 to 1000"},
		{[]string{"--pools", "-1"}, "bench: --pools -1: want 0 (a local block) to 100000"},
		{[]string{"--pools", "1000000000"}, "bench: --pools 1000000000: want 0 (a local block) to 100000"},
		{[]string{"--encrypted", "maybe"}, "--encrypted"},
	}
	for _, c := range cases {
		err := New().Run(append([]string{"htexctl", "bench"}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bench %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
