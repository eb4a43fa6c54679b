package pbs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/htex/htex/config"
	"github.com/htex/htex/internal/execx"
	"github.com/htex/htex/providers"
)

// Exit codes of the PBS client commands that are about one job, not the
// command: PBSE_UNKJOBID (15001) and PBSE_HISTJOBID (15139), modulo 256.
const (
	exitUnknownJob  = 153
	exitHistoryOnly = 35
)

// msgVanished is the Status.Message of a job qstat -x does not list: it
// ended on a server that keeps no history, or a routing queue dropped it
// after qsub returned (ALCF documents this for its prod queue:
// https://docs.alcf.anl.gov/running-jobs/#troubleshooting-common-errors).
const msgVanished = "qstat does not know this job: it ended without a history record, or a routing queue dropped it (check its queue's node and walltime limits)"

// qdelChunk bounds the ids given to one qdel, to stay far below ARG_MAX.
const qdelChunk = 200

// ErrBadOutput is wrapped by the error Status returns when qstat printed
// something that cannot be read as PBS's JSON.
var ErrBadOutput = errors.New("unreadable qstat output")

// PBS is the providers.Provider for PBS Professional / OpenPBS.
type PBS struct {
	cfg    config.Provider
	runner execx.Runner
}

var _ providers.Provider = (*PBS)(nil)

// New returns a PBS provider that runs qsub, qstat and qdel through runner.
// cfg.CmdTimeout, when set, bounds each command.
func New(cfg config.Provider, runner execx.Runner) *PBS {
	return &PBS{cfg: cfg, runner: runner}
}

// Name implements providers.Provider.
func (p *PBS) Name() string { return "pbs" }

// jobIDLine is what a PBS job id looks like: a sequence number, an optional
// array index ("[]" or "[7]") and an optional server name.
var jobIDLine = regexp.MustCompile(`^[0-9]+(\[[0-9]*\])?(\.[A-Za-z0-9][A-Za-z0-9._-]*)?$`)

// Submit runs `qsub <ScriptPath>` in the block's folder (so PBS_O_WORKDIR
// is s.Dir); the script's own #PBS lines carry the directives. It returns
// the first line of qsub's stdout that looks like a job id.
func (p *PBS) Submit(ctx context.Context, s providers.Submission) (string, error) {
	if s.ScriptPath == "" {
		return "", fmt.Errorf("submit block %d: no script path", s.BlockID)
	}
	res, err := p.run(ctx, s.Dir, "qsub", s.ScriptPath)
	if err != nil {
		return "", fmt.Errorf("submit block %d: %w", s.BlockID, err)
	}
	if id, ok := firstJobID(res.Stdout); ok {
		return id, nil
	}
	return "", fmt.Errorf("submit block %d: %w", s.BlockID, &providers.CommandError{
		Command: "qsub", ExitCode: res.ExitCode,
		Stderr: strings.TrimSpace(res.Stderr),
		Err:    fmt.Errorf("no job id in qsub output %q", head(res.Stdout, 200)),
	})
}

// firstJobID returns the first line of out that looks like a job id.
func firstJobID(out string) (string, bool) {
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if jobIDLine.MatchString(line) {
			return line, true
		}
	}
	return "", false
}

// Status runs one `qstat -E -f -F json -x <ids...>` and maps every id to a
// state; ids qstat does not know are Unknown.
//
// -E is needed: without it OpenPBS's qstat asks the server for each id in
// turn and, in JSON, prints only the first job (src/cmds/qstat.c,
// display_statjob, commit cd7ab5e: the "Jobs" object is created on the first
// call only), so every other block would look vanished. With -E it sends
// the whole list in one request and prints every job it knows, leaving out
// unknown ids without an error (checked against OpenPBS 23.06.06; -E is in
// qstat(1B) of OpenPBS and PBS Professional: "Groups jobs by server and
// displays jobs sorted by ascending ID").
func (p *PBS) Status(ctx context.Context, jobIDs []string) (map[string]providers.Status, error) {
	out := make(map[string]providers.Status, len(jobIDs))
	if len(jobIDs) == 0 {
		return out, nil
	}
	args := append([]string{"-E", "-f", "-F", "json", "-x"}, jobIDs...)
	res, err := p.runRaw(ctx, "", "qstat", args...)
	if err != nil {
		return nil, &providers.CommandError{Command: "qstat", ExitCode: res.ExitCode, Stderr: strings.TrimSpace(res.Stderr), Err: err}
	}
	if res.ExitCode != 0 && !onlyPerJobComplaints(res) {
		return nil, &providers.CommandError{Command: "qstat", ExitCode: res.ExitCode, Stderr: strings.TrimSpace(res.Stderr)}
	}
	jobs, err := parseQstat([]byte(res.Stdout))
	if err != nil {
		return nil, fmt.Errorf("qstat -E -f -F json -x: %w", err)
	}
	idx := newJobIndex(jobs)
	for _, id := range jobIDs {
		j, ok := idx.find(id)
		if !ok {
			out[id] = providers.Status{State: providers.Unknown, Message: msgVanished}
			continue
		}
		out[id] = j.status()
	}
	return out, nil
}

// onlyPerJobComplaints reports whether a failed qstat or qdel failed only
// because some of the jobs are unknown or already finished: every stderr
// line says so, or stderr is empty and the exit code is PBSE_UNKJOBID or
// PBSE_HISTJOBID.
func onlyPerJobComplaints(res execx.Result) bool {
	complaints := 0
	for line := range strings.Lines(res.Stderr) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case isPerJobComplaint(line):
			complaints++
		default:
			return false
		}
	}
	return complaints > 0 || res.ExitCode == exitUnknownJob || res.ExitCode == exitHistoryOnly
}

func isPerJobComplaint(line string) bool {
	l := strings.ToLower(line)
	return strings.Contains(l, "unknown job id") ||
		strings.Contains(l, "job has finished") ||
		strings.Contains(l, "request invalid for state of job")
}

// Cancel runs `qdel id...`. Jobs that are already finished or unknown to
// PBS are not an error.
func (p *PBS) Cancel(ctx context.Context, jobIDs []string) error {
	for start := 0; start < len(jobIDs); start += qdelChunk {
		ids := jobIDs[start:min(start+qdelChunk, len(jobIDs))]
		res, err := p.runRaw(ctx, "", "qdel", ids...)
		if err != nil {
			return fmt.Errorf("cancel %s: %w", strings.Join(ids, " "), &providers.CommandError{Command: "qdel", ExitCode: res.ExitCode, Stderr: strings.TrimSpace(res.Stderr), Err: err})
		}
		if res.ExitCode != 0 && !onlyPerJobComplaints(res) {
			return fmt.Errorf("cancel %s: %w", strings.Join(ids, " "), &providers.CommandError{Command: "qdel", ExitCode: res.ExitCode, Stderr: strings.TrimSpace(res.Stderr)})
		}
	}
	return nil
}

// run runs a command and turns a failure to run or a non-zero exit into a
// *providers.CommandError.
func (p *PBS) run(ctx context.Context, dir, name string, args ...string) (execx.Result, error) {
	res, err := p.runRaw(ctx, dir, name, args...)
	if err != nil || res.ExitCode != 0 {
		return res, &providers.CommandError{Command: name, ExitCode: res.ExitCode, Stderr: strings.TrimSpace(res.Stderr), Err: err}
	}
	return res, nil
}

// runRaw runs a command under cfg.CmdTimeout, in dir when it is not "";
// err is set only when the command could not run or timed out.
func (p *PBS) runRaw(ctx context.Context, dir, name string, args ...string) (execx.Result, error) {
	if d := time.Duration(p.cfg.CmdTimeout); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if dir != "" {
		return execx.RunIn(ctx, p.runner, dir, "", name, args...)
	}
	return p.runner.Run(ctx, "", name, args...)
}

// head returns at most n bytes of s, for error messages.
func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
