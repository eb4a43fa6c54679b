package bench

import (
	"strings"
	"testing"
)

func TestCheckOptions(t *testing.T) {
	ok := Options{Mode: "exec", Tasks: 100, Workers: 2, Prefetch: 1000}
	cases := []struct {
		name    string
		change  func(o *Options)
		wantErr string
	}{
		{"the defaults", func(o *Options) {}, ""},
		{"noop with simulated pools and no workers", func(o *Options) { o.Mode, o.Pools, o.Workers = "noop", 4, 0 }, ""},
		{"mode", func(o *Options) { o.Mode = "fast" }, `--mode "fast": want exec or noop`},
		{"no tasks", func(o *Options) { o.Tasks = 0 }, "--tasks 0: want 1 to 100000000"},
		// Used to end in a fatal out-of-memory error.
		{"a trillion tasks", func(o *Options) { o.Tasks = 1e12 }, "--tasks 1000000000000: want 1 to 100000000"},
		{"no workers", func(o *Options) { o.Workers = 0 }, "--workers 0: want at least 1"},
		// Used to mean "all", as 0 does.
		{"negative window", func(o *Options) { o.Window = -1 }, "--window -1: want 0 (all) or more"},
		// Used to reach the daemon's config unchecked.
		{"negative prefetch", func(o *Options) { o.Prefetch = -1 }, "--prefetch -1: want 0 to 1048576"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			c.change(&o)
			err := checkOptions(o)
			if (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("checkOptions = %v, want %q", err, c.wantErr)
			}
		})
	}
}
