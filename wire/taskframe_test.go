package wire

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestTasksFrame checks that hand-joined task frames decode to the tasks
// they were made of, zero and negative values and empty lists included.
func TestTasksFrame(t *testing.T) {
	tasks := []*Task{
		{Id: 1, JobId: 1, Argv: []string{"./simulate", "--seed", "42"}, ArrayIndex: -1, Attempt: 1},
		{Id: 1 << 40, JobId: 7, Argv: []string{"sh", "-c", "echo ü"}, Env: []string{"A=1", "B="}, Cwd: "/tmp",
			TimeoutMs: 90_000, ArrayIndex: 12, Attempt: 3, Noop: true, StdoutPath: "/o/{}", StderrPath: "/e"},
		{Id: 3, Argv: []string{""}, ArrayIndex: 0, Attempt: 0},
		{Id: 5, ArgvRaw: [][]byte{[]byte("ls"), {0xff, 'x'}}, EnvRaw: [][]byte{{'A', '=', 0xfe}}, CwdRaw: []byte{'/', 0xff}, Attempt: 2},
		{Id: 4, JobId: 2, Argv: []string{"x"}, TimeoutMs: -5, ArrayIndex: -1, Attempt: 1 << 30},
		{Id: 6, Argv: []string{"omp"}, ArrayIndex: -1, Attempt: 1, Cores: 8, Gpus: 2, MemBytes: 3 << 30, Slots: 4},
		{Id: 7, Argv: []string{"mpi"}, ArrayIndex: -1, Attempt: 1, MpiNodes: []string{"n1", "n2"}, RanksPerNode: 4},
	}
	var fields [][]byte
	var attempts []int32
	for _, tk := range tasks {
		slots := tk.Slots
		tk.Slots = 0
		f := AppendTaskFields(nil, tk)
		if slots != 0 { // as the interchange adds it at dispatch
			f = AppendTaskSlots(f, slots)
		}
		tk.Slots = slots
		fields = append(fields, f)
		attempts = append(attempts, tk.Attempt)
	}
	m, err := Decode(TasksFrame(fields, attempts))
	if err != nil {
		t.Fatal(err)
	}
	got := m.GetTasks()
	if got == nil || m.RequestId != 0 {
		t.Fatalf("decoded %v, want a Tasks envelope without request id", m)
	}
	want := &Tasks{Tasks: tasks}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded\n%v\nwant\n%v", got, want)
	}
	if m, err := Decode(TasksFrame(nil, nil)); err != nil || len(m.GetTasks().GetTasks()) != 0 {
		t.Errorf("empty frame: %v, %v", m, err)
	}
}
