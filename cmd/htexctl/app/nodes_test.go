package app

import (
	"strings"
	"testing"
)

// TestNodeFlags: --nodes and --ranks-per-node reach every task of the
// submission, and bad values are refused naming the flag and value.
func TestNodeFlags(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		nodes, ranks int32
		err          string
	}{
		{"none", nil, 0, 0, ""},
		{"two nodes, one rank each by default", []string{"--nodes", "2"}, 2, 1, ""},
		{"ranks", []string{"--nodes", "4", "--ranks-per-node", "8"}, 4, 8, ""},
		{"one node is an ordinary task", []string{"--nodes", "1"}, 0, 0, ""},
		{"zero nodes", []string{"--nodes", "0"}, 0, 0, "--nodes 0: must be >= 1"},
		{"negative nodes", []string{"--nodes", "-3"}, 0, 0, "--nodes -3: must be >= 1"},
		{"zero ranks", []string{"--nodes", "2", "--ranks-per-node", "0"}, 0, 0, "--ranks-per-node 0: must be >= 1"},
		{"ranks without nodes", []string{"--ranks-per-node", "4"}, 0, 0, "--ranks-per-node 4 needs --nodes 2 or more"},
		{"ranks with one node", []string{"--nodes", "1", "--ranks-per-node", "4"}, 0, 0, "needs --nodes 2 or more"},
		{"too many ranks", []string{"--nodes", "4096", "--ranks-per-node", "4096"}, 0, 0, "more than 1048576 ranks"},
		{"garbage", []string{"--nodes", "two"}, 0, 0, `invalid value "two" for flag -nodes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := submitSpecs(append(append([]string{"--array", "1-3"}, tt.args...), "--", "true", "{}")...)
			var nodes, ranks []int32
			for _, s := range specs {
				nodes, ranks = append(nodes, s.Nodes), append(ranks, s.RanksPerNode)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(nodes) != 3 {
				t.Fatalf("%d tasks, want 3", len(nodes))
			}
			for i := range nodes {
				if nodes[i] != tt.nodes || ranks[i] != tt.ranks {
					t.Errorf("task %d: nodes %d ranks %d, want %d and %d", i, nodes[i], ranks[i], tt.nodes, tt.ranks)
				}
			}
		})
	}
}
