package pinning

import (
	"strings"
	"testing"
)

func TestLauncherBindHint(t *testing.T) {
	cases := []struct {
		name            string
		allowed, online []int
		want            []string // "" = no hint
	}{
		{"whole node", []int{0, 1, 2, 3}, []int{0, 1, 2, 3}, nil},
		{"online unknown", []int{0}, nil, nil},
		{"bound to one thread", []int{1}, []int{0, 1, 2, 3}, []string{"1 of the node's 4 CPUs", "mask is 1", "--cpu-bind=none", "-cc none", "--bind-to none"}},
		{"bound to a socket", []int{0, 1, 2, 3}, []int{0, 1, 2, 3, 4, 5, 6, 7}, []string{"4 of the node's 8 CPUs", "mask is 0-3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := LauncherBindHint(c.allowed, c.online)
			if c.want == nil {
				if got != "" {
					t.Fatalf("hint %q, want none", got)
				}
				return
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("hint %q lacks %q", got, w)
				}
			}
		})
	}
}

func TestCutByMask(t *testing.T) {
	cases := []struct {
		name string
		node Node
		opts Options
		want bool
	}{
		{"max workers cut by one CPU", Node{CPUs: []int{0}}, Options{MaxWorkersPerNode: 8, CoresPerWorker: 1}, true},
		{"accelerators cut by one CPU", Node{CPUs: []int{0}}, Options{CoresPerWorker: 1, Accelerators: []string{"0", "1"}}, true},
		{"unlimited workers: cores decide", Node{CPUs: []int{0}}, Options{CoresPerWorker: 1}, false},
		{"max workers decide", Node{CPUs: []int{0, 1, 2, 3}}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1}, false},
		{"memory, not cpus, is short", Node{CPUs: []int{0, 1, 2, 3}, MemoryGB: 2}, Options{MaxWorkersPerNode: 4, CoresPerWorker: 1, MemPerWorker: 1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := Plan(c.node, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.CutByMask(); got != c.want {
				t.Errorf("CutByMask = %v, want %v (limited by %s, bounds %+v)", got, c.want, l.LimitedBy, l.Bounds)
			}
		})
	}
}
