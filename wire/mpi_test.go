package wire

import (
	"slices"
	"strings"
	"testing"
)

func TestAppendMPIFields(t *testing.T) {
	f := AppendTaskFields(nil, &Task{Id: 7, JobId: 2, Argv: []string{"sh", "-c", "$HTEX_MPI_PREFIX hostname"}, TimeoutMs: 1000})
	f = AppendMPIFields(f, []string{"n3", "n1"}, 4)
	m, err := Decode(TasksFrame([][]byte{f}, []int32{2}))
	if err != nil {
		t.Fatal(err)
	}
	ts := m.GetTasks().GetTasks()
	if len(ts) != 1 {
		t.Fatalf("%d tasks, want 1", len(ts))
	}
	got := ts[0]
	if got.Id != 7 || got.Attempt != 2 || got.TimeoutMs != 1000 || !slices.Equal(got.MpiNodes, []string{"n3", "n1"}) ||
		got.RanksPerNode != 4 || !slices.Equal(got.Args(), []string{"sh", "-c", "$HTEX_MPI_PREFIX hostname"}) {
		t.Errorf("decoded %v", got)
	}
}

func TestCheckNodes(t *testing.T) {
	for _, c := range []struct {
		name string
		spec *TaskSpec
		err  string
	}{
		{"no nodes", &TaskSpec{}, ""},
		{"one node", &TaskSpec{Nodes: 1}, ""},
		{"one node one rank", &TaskSpec{Nodes: 1, RanksPerNode: 1}, ""},
		{"two nodes", &TaskSpec{Nodes: 2}, ""},
		{"ranks", &TaskSpec{Nodes: 4, RanksPerNode: 64}, ""},
		{"negative nodes", &TaskSpec{Nodes: -2}, "nodes -2: must be >= 1"},
		{"negative ranks", &TaskSpec{Nodes: 2, RanksPerNode: -1}, "ranks_per_node -1: must be >= 1"},
		{"ranks without nodes", &TaskSpec{RanksPerNode: 8}, "ranks_per_node 8 needs nodes >= 2"},
		{"too many ranks", &TaskSpec{Nodes: 1 << 12, RanksPerNode: 1 << 9}, "more than 1048576 ranks"},
		{"with cores", &TaskSpec{Nodes: 2, Cores: 4}, "cores, gpus and mem do not apply"},
		{"with gpus", &TaskSpec{Nodes: 2, Gpus: 1}, "cores, gpus and mem do not apply"},
		{"with mem", &TaskSpec{Nodes: 2, MemBytes: 1 << 30}, "cores, gpus and mem do not apply"},
	} {
		err := CheckNodes(c.spec)
		if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: CheckNodes = %v, want %q", c.name, err, c.err)
		}
	}
}
