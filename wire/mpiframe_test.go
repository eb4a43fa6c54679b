package wire

import (
	"slices"
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
