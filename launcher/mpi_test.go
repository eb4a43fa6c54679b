package launcher

import (
	"strings"
	"testing"
)

func TestPrefix(t *testing.T) {
	for _, c := range []struct {
		name, kind string
		nodes      []string
		ranks      int
		want, err  string
	}{
		{name: "srun two nodes", kind: MPISrun, nodes: []string{"n1", "n2"}, ranks: 1,
			want: "srun -N 2 -n 2 --ntasks-per-node 1 --nodelist n1,n2 --overlap"},
		{name: "srun ranks per node", kind: MPISrun, nodes: []string{"nid001", "nid007", "nid003"}, ranks: 8,
			want: "srun -N 3 -n 24 --ntasks-per-node 8 --nodelist nid001,nid007,nid003 --overlap"},
		{name: "mpiexec PALS", kind: MPIMpiexec, nodes: []string{"x3005c0s13b0n0", "x3005c0s13b1n0"}, ranks: 4,
			want: "mpiexec -n 8 --ppn 4 --hosts x3005c0s13b0n0,x3005c0s13b1n0"},
		{name: "mpiexec fully qualified", kind: MPIMpiexec, nodes: []string{"a.hsn.example.org"}, ranks: 1,
			want: "mpiexec -n 1 --ppn 1 --hosts a.hsn.example.org"},
		{name: "no launcher", kind: "", nodes: []string{"n1", "n2"}, ranks: 1, err: "no MPI launcher"},
		{name: "unknown launcher", kind: "aprun", nodes: []string{"n1", "n2"}, ranks: 1, err: `unknown MPI launcher "aprun"`},
		{name: "no nodes", kind: MPISrun, ranks: 1, err: "no nodes"},
		{name: "zero ranks", kind: MPISrun, nodes: []string{"n1"}, ranks: 0, err: "ranks per node 0"},
		{name: "too many ranks", kind: MPISrun, nodes: []string{"n1", "n2"}, ranks: MaxRanks, err: "exceeds"},
		{name: "node with a space", kind: MPISrun, nodes: []string{"n1", "n2 x"}, ranks: 1, err: `node name "n2 x"`},
		{name: "node with a comma", kind: MPIMpiexec, nodes: []string{"n1,n3", "n2"}, ranks: 1, err: `node name "n1,n3"`},
		{name: "node like an option", kind: MPISrun, nodes: []string{"-n9"}, ranks: 1, err: `node name "-n9"`},
		{name: "node twice", kind: MPISrun, nodes: []string{"n1", "n1"}, ranks: 1, err: `node "n1" given twice`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Prefix(c.kind, c.nodes, c.ranks)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Prefix = %q, %v; want an error containing %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Prefix = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestMPIKind(t *testing.T) {
	for _, c := range []struct{ launcher, want, why string }{
		{"srun", MPISrun, ""},
		{"mpiexec", MPIMpiexec, ""},
		{"pbsdsh", MPIMpiexec, ""},
		{"single", "", "one pool"},
		{"simple", "", "does not know"},
		{"aprun", "", "ALPS"},
		{"mpiexec-openmpi", "", "Open MPI"},
		{"bogus", "", `unknown launcher "bogus"`},
	} {
		kind, why := MPIKind(c.launcher)
		if kind != c.want || (c.why == "") != (why == "") || !strings.Contains(why, c.why) {
			t.Errorf("MPIKind(%q) = %q, %q; want %q and a reason containing %q", c.launcher, kind, why, c.want, c.why)
		}
	}
	// Every launcher a config may name has an answer.
	for _, k := range Kinds {
		if kind, why := MPIKind(k); (kind == "") == (why == "") {
			t.Errorf("MPIKind(%q) = %q, %q: want a kind or a reason, not both or neither", k, kind, why)
		}
	}
}
