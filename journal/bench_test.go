package journal

import (
	"fmt"
	"testing"
	"time"
)

// benchBatch returns n tasks with ids first..first+n-1 in job 1 and, when
// withResults, a result for each: the shape of a busy interchange's batch.
func benchBatch(first int64, n int, withResults bool) *Batch {
	now := time.Now()
	b := &Batch{Tasks: make([]Task, n)}
	for i := range b.Tasks {
		id := first + int64(i)
		b.Tasks[i] = Task{
			ID: id, JobID: 1, ArrayIndex: int64(i),
			Argv:        []string{"/usr/bin/python3", "simulate.py", "--seed", fmt.Sprint(id), "--out", "/scratch/run/out"},
			Env:         []string{"OMP_NUM_THREADS=4", "SIM_MODE=fast"},
			Cwd:         "/home/user/project",
			Timeout:     10 * time.Minute,
			Retries:     2,
			StdoutPath:  "/scratch/run/logs/%j.%t.out",
			SubmittedAt: now,
		}
	}
	if withResults {
		b.Results = make([]Result, n)
		for i := range b.Results {
			id := first + int64(i)
			b.Results[i] = Result{
				TaskID: id, State: "succeeded", Attempts: 1, BlockID: 3, PoolID: "3-nid001234-a1b2", Node: "nid001234",
				Rank: i % 64, StartedAt: now, EndedAt: now.Add(time.Second), Stdout: []byte(fmt.Sprintf("hello %d\n", id)),
			}
		}
	}
	return b
}

const benchRows = 1000

// renumber gives the tasks and results of b the ids first, first+1, ...
// (cheap next to a Write, so it stays inside the timed loop).
func renumber(b *Batch, first int64) {
	for i := range b.Tasks {
		b.Tasks[i].ID = first + int64(i)
	}
	for i := range b.Results {
		b.Results[i].TaskID = first + int64(i)
	}
}

// BenchmarkWriteTasks: one Write of 1,000 tasks per op.
func BenchmarkWriteTasks(b *testing.B) {
	j, _ := open(b)
	batch := benchBatch(1, benchRows, false)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		renumber(batch, int64(i*benchRows+1))
		if err := j.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriteResults: one Write of 1,000 results per op.
func BenchmarkWriteResults(b *testing.B) {
	j, _ := open(b)
	batch := benchBatch(1, benchRows, true)
	batch.Tasks = nil
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		renumber(batch, int64(i*benchRows+1))
		if err := j.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriteMixed: the steady state of a busy daemon, one Write of
// 1,000 new tasks and 1,000 results (of the previous Write's tasks) per op.
func BenchmarkWriteMixed(b *testing.B) {
	j, _ := open(b)
	batch := benchBatch(1, benchRows, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		first := int64(i*benchRows + 1)
		for k := range batch.Tasks {
			batch.Tasks[k].ID = first + int64(k)
			batch.Results[k].TaskID = first - benchRows + int64(k) // ids <= 0 in the first op: harmless
		}
		if err := j.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/write")
}
