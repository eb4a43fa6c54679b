// Package providers defines how the daemon talks to a batch system: submit a
// rendered block script, read the state of many blocks in one call, cancel.
// Each scheduler lives in its own sub-package (local, slurm, pbs) and
// implements Provider; none of them decides how many blocks to run.
package providers

import (
	"context"
	"fmt"
)

// State is a block's state as the batch system reports it.
type State string

// Block states, shared by every provider (SPEC.md "Providers").
const (
	Pending   State = "pending"
	Running   State = "running"
	Held      State = "held"
	Completed State = "completed"
	Failed    State = "failed"
	Cancelled State = "cancelled"
	Timeout   State = "timeout"
	// Preempted: the scheduler ended the job to run another (Slurm PR,
	// sacct PREEMPTED). A job it requeues instead shows pending again.
	Preempted State = "preempted"
	Unknown   State = "unknown"
)

// Terminal reports whether a block in this state will never run again.
func (s State) Terminal() bool {
	switch s {
	case Completed, Failed, Cancelled, Timeout, Preempted:
		return true
	}
	return false
}

// Status is what the batch system says of one block.
type Status struct {
	State    State
	ExitCode int    // when known and terminal
	Message  string // scheduler's reason, when it gives one
	// Stuck: a pending or held job whose reason will not clear by itself
	// (held, an invalid account or QOS, a request above a per-job limit);
	// only a person, or strategy.max_pending, ends the wait.
	Stuck bool
}

// Submission is one block to submit.
type Submission struct {
	BlockID    int64
	Name       string // job name, e.g. "htex-<label>-<block>"
	Script     string // the rendered batch script
	ScriptPath string // where the script was written (<run-dir>/blocks/<id>/submit.sh)
	Dir        string // the block's folder: stdout/stderr go here
	Nodes      int
}

// Provider submits, watches and cancels blocks on one batch system.
type Provider interface {
	// Name is the provider kind ("local", "slurm", "pbs").
	Name() string
	// Submit submits a block and returns the scheduler's job id.
	Submit(ctx context.Context, s Submission) (jobID string, err error)
	// Status reports the state of every given job id in as few scheduler
	// calls as possible (one, normally). Ids the scheduler does not know are
	// reported as Unknown, not as an error.
	Status(ctx context.Context, jobIDs []string) (map[string]Status, error)
	// Cancel cancels the given jobs.
	Cancel(ctx context.Context, jobIDs []string) error
}

// CommandError is a failed scheduler command, with its stderr.
type CommandError struct {
	Command  string
	ExitCode int
	Stderr   string
	Err      error
}

func (e *CommandError) Error() string {
	msg := e.Stderr
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s failed (exit %d): %s", e.Command, e.ExitCode, msg)
}

func (e *CommandError) Unwrap() error { return e.Err }
