package app

import (
	"strings"
	"testing"
)

// TestRetriesFlag: --retries reaches every task, up to wire.MaxRetries;
// a value out of range is refused naming the flag and value.
func TestRetriesFlag(t *testing.T) {
	tests := []struct {
		args []string
		want int32
		err  string
	}{
		{nil, -1, ""}, // the executor's default
		{[]string{"--retries", "0"}, 0, ""},
		{[]string{"--retries", "10000"}, 10000, ""},
		{[]string{"--retries", "10001"}, 0, "--retries 10001: must be in [0, 10000]"},
		{[]string{"--retries", "-2"}, 0, "--retries -2: must be in [0, 10000]"},
		{[]string{"--retries", "4294967296"}, 0, "--retries 4294967296: must be in [0, 10000]"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			specs, err := submitSpecs(append(append([]string{"--array", "1-2"}, tt.args...), "--", "true", "{}")...)
			var got []int32
			for _, s := range specs {
				got = append(got, s.Retries)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0] != tt.want || got[1] != tt.want {
				t.Errorf("retries %v, want %d for each task", got, tt.want)
			}
		})
	}
}
