// Package execx is the one place that runs scheduler commands (sbatch,
// squeue, qsub, ...). Providers take a Runner so that tests can record or
// fake the commands; the real runner enforces a timeout per command.
package execx

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"time"
)

// Result is what a command printed and how it ended.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Runner runs one command to completion. stdin may be empty.
type Runner interface {
	Run(ctx context.Context, stdin string, name string, args ...string) (Result, error)
}

// DirRunner is a Runner that can also run a command in a given working
// directory. Exec and Fake implement it.
type DirRunner interface {
	Runner
	RunIn(ctx context.Context, dir string, stdin string, name string, args ...string) (Result, error)
}

// RunIn runs a command in dir when r is a DirRunner, else with r.Run in the
// runner's own directory (a command that must not depend on its working
// directory should also be given absolute paths).
func RunIn(ctx context.Context, r Runner, dir string, stdin string, name string, args ...string) (Result, error) {
	if dr, ok := r.(DirRunner); ok {
		return dr.RunIn(ctx, dir, stdin, name, args...)
	}
	return r.Run(ctx, stdin, name, args...)
}

// Exec is the real Runner: os/exec with a per-command timeout.
type Exec struct {
	Timeout time.Duration // 0 = no timeout beyond ctx
	Env     []string      // extra environment, K=V
	Dir     string
}

// Run runs the command. A non-zero exit is reported in Result.ExitCode with
// a nil error; err is set only when the command could not run or timed out.
func (e Exec) Run(ctx context.Context, stdin string, name string, args ...string) (Result, error) {
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 2 * time.Second
	cmd.Dir = e.Dir
	if len(e.Env) > 0 {
		cmd.Env = append(cmd.Environ(), e.Env...)
	}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		res.ExitCode = ee.ExitCode()
		return res, nil
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, err
}

// RunIn runs the command with dir as its working directory ("" = e.Dir).
func (e Exec) RunIn(ctx context.Context, dir string, stdin string, name string, args ...string) (Result, error) {
	if dir != "" {
		e.Dir = dir
	}
	return e.Run(ctx, stdin, name, args...)
}

// Call is one recorded command.
type Call struct {
	Name  string
	Args  []string
	Stdin string
	Dir   string // working directory given to RunIn; "" for Run
}

// Fake is a Runner for tests: it records calls and answers with Respond.
type Fake struct {
	Calls   []Call
	Respond func(c Call) (Result, error)
}

// Run records the call and answers.
func (f *Fake) Run(_ context.Context, stdin, name string, args ...string) (Result, error) {
	c := Call{Name: name, Args: args, Stdin: stdin}
	f.Calls = append(f.Calls, c)
	if f.Respond == nil {
		return Result{}, nil
	}
	return f.Respond(c)
}

// RunIn records the call with its directory and answers.
func (f *Fake) RunIn(_ context.Context, dir, stdin, name string, args ...string) (Result, error) {
	c := Call{Name: name, Args: args, Stdin: stdin, Dir: dir}
	f.Calls = append(f.Calls, c)
	if f.Respond == nil {
		return Result{}, nil
	}
	return f.Respond(c)
}
