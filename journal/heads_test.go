package journal

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestUnfinishedHeads: the heads are those of Unfinished, field by field,
// with the same attempts.
func TestUnfinishedHeads(t *testing.T) {
	j, _ := open(t)
	var b Batch
	for i := int64(1); i <= 10; i++ {
		b.Tasks = append(b.Tasks, Task{ID: i, JobID: 1 + i%2, ArrayIndex: -1, Argv: []string{"t", fmt.Sprint(i)},
			Retries: int(i % 3), Priority: int(i%4) - 1, Timeout: time.Duration(i) * 1500 * time.Millisecond,
			SubmittedAt: ts(i, 250), Cores: int(i % 3), GPUs: int(i % 2), MemBytes: i << 20, Nodes: int(i % 4), RanksPerNode: int(i % 5)})
	}
	b.Attempts = []Attempt{{TaskID: 5, Attempt: 1, State: "lost"}, {TaskID: 5, Attempt: 2, State: "lost"}}
	mustWrite(t, j, &b)
	mustWrite(t, j, &Batch{Results: []Result{{TaskID: 1, State: "succeeded"}, {TaskID: 9, State: "failed"}}})
	tasks, att, err := j.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	heads, hatt, err := j.UnfinishedHeads()
	if err != nil {
		t.Fatal(err)
	}
	var want []TaskHead
	for _, tk := range tasks {
		want = append(want, TaskHead{ID: tk.ID, JobID: tk.JobID, Timeout: tk.Timeout, Retries: tk.Retries,
			Priority: tk.Priority, SubmittedAt: tk.SubmittedAt, Cores: tk.Cores, GPUs: tk.GPUs, MemBytes: tk.MemBytes,
			Nodes: tk.Nodes, RanksPerNode: tk.RanksPerNode})
	}
	if len(want) != 8 || !reflect.DeepEqual(heads, want) {
		t.Errorf("heads\n%+v\nwant\n%+v", heads, want)
	}
	if !reflect.DeepEqual(hatt, att) || hatt[5] != 2 {
		t.Errorf("attempts %v, want %v", hatt, att)
	}
}
