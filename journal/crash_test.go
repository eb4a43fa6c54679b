package journal

import (
	"bufio"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashEnv makes the test binary a crash-test child: it writes batches to
// the journal named by the variable and prints each batch's number to stdout
// after Write has returned nil, until it is killed.
const crashEnv = "HTEX_JOURNAL_CRASH_CHILD"

const (
	crashTasks   = 20 // tasks per batch (= per job)
	crashResults = 10 // results per batch, for the even tasks of the batch
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		if err := crashChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func crashChild(path string) error {
	j, err := Open(path)
	if err != nil {
		return err
	}
	job, task, _, err := j.MaxIDs()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second) // in case nobody kills us
	for time.Now().Before(deadline) {
		job++
		now := time.Now()
		b := &Batch{
			Jobs:   []Job{{ID: job, Name: "crash", SubmittedAt: now}},
			Blocks: []Block{{ID: 1, JobID: "1", Provider: "local", State: "running", Nodes: 1, UpdatedAt: now, Message: fmt.Sprint(job)}},
			Pools:  []Pool{{ID: "pool-" + fmt.Sprint(job%4), BlockID: 1, Slots: 4, RegisteredAt: now}},
			Events: []Event{{At: now, Kind: "batch", TaskID: task + 1, Message: fmt.Sprint(job)}},
		}
		for i := 0; i < crashTasks; i++ {
			task++
			b.Tasks = append(b.Tasks, Task{ID: task, JobID: job, ArrayIndex: int64(i), Argv: []string{"echo", strings.Repeat("x", 200)}, SubmittedAt: now})
			if i%2 == 0 {
				b.Results = append(b.Results, Result{TaskID: task, State: "succeeded", Attempts: 1, StartedAt: now, EndedAt: now, Stdout: []byte(strings.Repeat("y", 300))})
				b.Attempts = append(b.Attempts, Attempt{TaskID: task, Attempt: 1, State: "succeeded", StartedAt: now, EndedAt: now})
			}
		}
		if err := j.Write(b); err != nil {
			return err
		}
		if _, err := os.Stdout.WriteString(strconv.FormatInt(job, 10) + "\n"); err != nil {
			return err
		}
	}
	return j.Close()
}

// TestCrash kills a writing child with SIGKILL at random moments, then
// checks that the journal opens, passes integrity_check, holds every batch
// the child reported as committed, and holds no partial batch.
func TestCrash(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("spawns processes (skipped with -short, never in CI)")
	}
	path := filepath.Join(t.TempDir(), "htex.db")
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	committed := map[int64]bool{}
	const rounds = 6
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan int64, 1<<16)
		readDone := make(chan error, 1)
		go func() {
			r := bufio.NewReader(out)
			for {
				s, err := r.ReadString('\n')
				if err != nil { // EOF; a line without its newline does not count
					if err == io.EOF {
						err = nil
					}
					readDone <- err
					close(lines)
					return
				}
				n, err := strconv.ParseInt(strings.TrimSuffix(s, "\n"), 10, 64)
				if err != nil {
					readDone <- err
					close(lines)
					return
				}
				lines <- n
			}
		}()

		// Round 0 kills the child at a random moment of its start (maybe in
		// the middle of creating the schema); the others once it commits.
		var got []int64
		if round > 0 {
			select {
			case n, ok := <-lines:
				if !ok {
					cmd.Wait()
					t.Fatalf("round %d: child ended before committing: %s", round, stderr.String())
				}
				got = append(got, n)
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: child committed nothing in 20s: %s", round, stderr.String())
			}
		}
		if round == 0 {
			time.Sleep(time.Duration(rng.Intn(40)) * time.Millisecond)
		} else {
			time.Sleep(time.Duration(rng.Intn(250)) * time.Millisecond)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		for n := range lines {
			got = append(got, n)
		}
		if err := <-readDone; err != nil {
			t.Fatalf("round %d: reading child output: %v", round, err)
		}
		err = cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
			t.Fatalf("round %d: child did not die of the kill: %v; stderr: %s", round, err, stderr.String())
		}
		for _, n := range got {
			committed[n] = true
		}
		t.Logf("round %d: %d batches committed before SIGKILL", round, len(got))

		checkCrashJournal(t, path, committed, round+1)
	}
	if len(committed) == 0 {
		t.Fatal("no batch committed in any round")
	}
}

func checkCrashJournal(t *testing.T, path string, committed map[int64]bool, rounds int) {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	defer j.Close()
	if err := j.IntegrityCheck(); err != nil {
		t.Fatal(err)
	}
	// No partial batch: every job has all its tasks, results and attempts.
	rows, err := j.r.Query(`SELECT j.id,
	  (SELECT count(*) FROM tasks t WHERE t.job_id = j.id),
	  (SELECT count(*) FROM tasks t JOIN results r ON r.task_id = t.id WHERE t.job_id = j.id),
	  (SELECT count(*) FROM tasks t JOIN attempts a ON a.task_id = t.id WHERE t.job_id = j.id),
	  (SELECT count(*) FROM events e WHERE e.message = CAST(j.id AS TEXT))
	FROM jobs j ORDER BY j.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	present := map[int64]bool{}
	for rows.Next() {
		var id, tasks, results, attempts, events int64
		if err := rows.Scan(&id, &tasks, &results, &attempts, &events); err != nil {
			t.Fatal(err)
		}
		if tasks != crashTasks || results != crashResults || attempts != crashResults || events != 1 {
			t.Errorf("job %d is partial: %d tasks, %d results, %d attempts, %d events", id, tasks, results, attempts, events)
		}
		present[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for n := range committed {
		if !present[n] {
			t.Errorf("batch %d was reported committed but is missing", n)
		}
	}
	// Only the batch in flight at each kill may be present unreported.
	if extra := len(present) - len(committed); extra > rounds {
		t.Errorf("%d batches present but not reported after %d kills", extra, rounds)
	}
}
