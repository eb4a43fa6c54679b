// Package slurm is the Slurm provider: it submits block scripts with sbatch,
// reads their states with squeue (then sacct for jobs squeue no longer
// lists) and cancels them with scancel. Every command goes through an
// execx.Runner. It renders nothing and decides nothing about scaling.
package slurm

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/htex/htex/config"
	"github.com/htex/htex/internal/execx"
	"github.com/htex/htex/providers"
)

// maxIDsPerCall bounds the job ids given to one squeue, sacct or scancel
// call; a daemon rarely watches more than a few dozen blocks, so this is
// one call in practice.
const maxIDsPerCall = 500

// Slurm implements providers.Provider.
type Slurm struct {
	cfg    config.Provider
	runner execx.Runner

	mu       sync.Mutex
	terminal map[string]providers.Status // final states already seen
	noSacct  string                      // sacct's complaint once it said accounting is disabled
}

var _ providers.Provider = (*Slurm)(nil)

// New returns a Slurm provider. A nil runner means the real commands, each
// with provider.cmd_timeout.
func New(cfg config.Provider, runner execx.Runner) *Slurm {
	if runner == nil {
		runner = execx.Exec{Timeout: cfg.CmdTimeout.D()}
	}
	return &Slurm{cfg: cfg, runner: runner, terminal: map[string]providers.Status{}}
}

// Name returns "slurm".
func (s *Slurm) Name() string { return "slurm" }

// clusterArgs is --clusters=<x> when provider.clusters is set.
func (s *Slurm) clusterArgs() []string {
	if s.cfg.Clusters == "" {
		return nil
	}
	return []string{"--clusters=" + s.cfg.Clusters}
}

var jobIDLine = regexp.MustCompile(`^([0-9]+)(;\S+)?$`)

// Submit runs "sbatch --parsable <script>" in the block's folder and
// returns the job id (without the ";cluster" suffix sbatch adds on
// multi-cluster sites). The script's --clusters directive, if any, picks
// the cluster.
func (s *Slurm) Submit(ctx context.Context, sub providers.Submission) (string, error) {
	if sub.ScriptPath == "" {
		return "", fmt.Errorf("submit block %d: no script path", sub.BlockID)
	}
	args := []string{"--parsable", sub.ScriptPath}
	res, err := execx.RunIn(ctx, s.runner, sub.Dir, "", "sbatch", args...)
	if err != nil || res.ExitCode != 0 {
		return "", cmdError("sbatch", args, res, err)
	}
	for _, line := range strings.Split(res.Stdout, "\n") {
		if m := jobIDLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			return m[1], nil
		}
	}
	return "", &providers.CommandError{
		Command: commandLine("sbatch", args),
		Stderr:  strings.TrimSpace(res.Stderr),
		Err:     fmt.Errorf("no job id in sbatch output %q", strings.TrimSpace(res.Stdout)),
	}
}

// Status reports the state of every given job: one squeue call for all of
// them (with -t all, so that jobs that ended within MinJobAge still show
// CD/F/CA/TO), then one sacct call for those squeue no longer lists. Jobs
// neither knows are Unknown. A terminal state, once seen, is kept and never
// asked for again.
func (s *Slurm) Status(ctx context.Context, jobIDs []string) (map[string]providers.Status, error) {
	out := make(map[string]providers.Status, len(jobIDs))
	var ask []string
	s.mu.Lock()
	for _, id := range jobIDs {
		if _, dup := out[id]; dup || id == "" {
			continue
		}
		if st, ok := s.terminal[id]; ok {
			out[id] = st
			continue
		}
		out[id] = providers.Status{State: providers.Unknown}
		ask = append(ask, id)
	}
	s.mu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}

	var missing []string
	for _, ids := range chunks(ask, maxIDsPerCall) {
		seen, err := s.squeue(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if st, ok := seen[id]; ok {
				out[id] = st
			} else {
				missing = append(missing, id)
			}
		}
	}
	for _, ids := range chunks(missing, maxIDsPerCall) {
		for id, st := range s.sacct(ctx, ids) {
			out[id] = st
		}
	}

	s.mu.Lock()
	for id, st := range out {
		if st.State.Terminal() {
			s.terminal[id] = st
		}
	}
	s.mu.Unlock()
	return out, nil
}

// squeue asks for the given ids. "Invalid job id specified" (every id has
// left the controller) gives an empty answer, not an error.
func (s *Slurm) squeue(ctx context.Context, ids []string) (map[string]providers.Status, error) {
	args := append(s.clusterArgs(), "-h", "-t", "all", "-j", strings.Join(ids, ","), "-o", "%i %t %r")
	res, err := s.runner.Run(ctx, "", "squeue", args...)
	if err == nil && res.ExitCode != 0 && strings.Contains(res.Stderr, "Invalid job id specified") {
		return map[string]providers.Status{}, nil
	}
	if err != nil || res.ExitCode != 0 {
		return nil, cmdError("squeue", args, res, err)
	}
	return ParseSqueue(res.Stdout), nil
}

// sacct asks accounting for ids squeue no longer lists. A failed sacct
// (accounting disabled, slurmdbd down) leaves them Unknown, with sacct's
// complaint as the message, since squeue's answer for the others stands.
// Once sacct has said that accounting is disabled it is not asked again.
func (s *Slurm) sacct(ctx context.Context, ids []string) map[string]providers.Status {
	unknown := func(msg string) map[string]providers.Status {
		out := make(map[string]providers.Status, len(ids))
		for _, id := range ids {
			out[id] = providers.Status{State: providers.Unknown, Message: msg}
		}
		return out
	}
	s.mu.Lock()
	off := s.noSacct
	s.mu.Unlock()
	if off != "" {
		return unknown(off)
	}

	args := append(s.clusterArgs(), "-n", "-X", "-P", "-j", strings.Join(ids, ","), "-o", "JobID,State,ExitCode")
	res, err := s.runner.Run(ctx, "", "sacct", args...)
	if err != nil || res.ExitCode != 0 {
		msg := "not listed by squeue; " + cmdError("sacct", args, res, err).Error()
		if err == nil && strings.Contains(res.Stderr, "accounting storage is disabled") {
			// It will not change while the daemon runs: stop asking.
			s.mu.Lock()
			s.noSacct = "not listed by squeue; sacct: " + strings.TrimSpace(res.Stderr)
			s.mu.Unlock()
		}
		return unknown(msg)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := map[string]providers.Status{}
	for id, st := range ParseSacct(res.Stdout) {
		if want[id] {
			out[id] = st
		}
	}
	return out
}

// Cancel runs "scancel id...". Jobs that have already ended are not an error.
func (s *Slurm) Cancel(ctx context.Context, jobIDs []string) error {
	var ids []string
	for _, id := range jobIDs {
		if id != "" {
			ids = append(ids, id)
		}
	}
	for _, chunk := range chunks(ids, maxIDsPerCall) {
		args := append(s.clusterArgs(), chunk...)
		res, err := s.runner.Run(ctx, "", "scancel", args...)
		if err == nil && res.ExitCode != 0 && onlyFinishedComplaints(res.Stderr) {
			continue
		}
		if err != nil || res.ExitCode != 0 {
			return cmdError("scancel", args, res, err)
		}
	}
	return nil
}

// onlyFinishedComplaints reports whether every line of scancel's stderr says
// that a job has already ended or is gone.
func onlyFinishedComplaints(stderr string) bool {
	seen := false
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		seen = true
		if !strings.Contains(l, "already completing or completed") && !strings.Contains(l, "Invalid job id specified") {
			return false
		}
	}
	return seen
}

// ParseSqueue reads lines of `squeue -h -o "%i %t %r"` (job id, compact
// state, reason; squeue(1) of Slurm 22.05, "-o <output_format>": %i job
// id, %t compact state, %r "the reason a job is in its current state").
// The reason is the rest of the line, since some hold spaces
// ("ReqNodeNotAvail, UnavailableNodes:n[1-2]"). "CLUSTER: name" header
// lines of multi-cluster output are skipped.
func ParseSqueue(text string) map[string]providers.Status {
	out := map[string]providers.Status{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] == "CLUSTER:" {
			continue
		}
		st := squeueState(f[1])
		reason := strings.Join(f[2:], " ")
		if reason == "None" || reason == "(null)" {
			reason = ""
		}
		if st.State == providers.Pending || st.State == providers.Held {
			st.Stuck = st.Stuck || Stuck(reason)
		}
		if st.Message == "" {
			st.Message = reason
		} else if reason != "" {
			st.Message += ": " + reason
		}
		out[f[0]] = st
	}
	return out
}

// stuckReasons are pending reasons that never clear by themselves
// (Slurm's "Job Reason Codes", https://slurm.schedmd.com/job_reason_codes.html):
// a hold waits for scontrol release, an invalid or refused account, QOS
// or partition for the request to change, a dependency that can never be
// satisfied for nothing.
var stuckReasons = map[string]bool{
	"JobHeldUser": true, "JobHeldAdmin": true, "InvalidAccount": true, "InvalidQOS": true,
	"AccountNotAllowed": true, "QOSNotAllowed": true, "PartitionConfig": true, "BadConstraints": true,
	"DependencyNeverSatisfied": true,
}

// Stuck reports whether a pending job's reason will not clear by itself:
// a hold, an invalid account or QOS, a request above a maximum of its QOS
// or association (QOSMax*, AssocMax*, Max*PerAccount: "a portion of the
// job request exceeds a maximum limit"), or an association whose
// allocation of minutes is spent (AssocGrp*Minutes, "by past, present and
// future jobs"; the *RunMinutes limits count running jobs only and clear).
// Limits on what is running now (AssocGrpCpuLimit, QOSGrpNodeLimit) clear
// as other jobs end, and so do Priority, Resources and
// ReqNodeNotAvail while nodes come back: they are not stuck.
func Stuck(reason string) bool {
	word, _, _ := strings.Cut(reason, ",") // "ReqNodeNotAvail, UnavailableNodes:..."
	word = strings.TrimSpace(word)
	switch {
	case stuckReasons[word]:
		return true
	case strings.HasPrefix(word, "QOSMax"), strings.HasPrefix(word, "AssocMax"),
		strings.HasPrefix(word, "Max") && strings.HasSuffix(word, "PerAccount"):
		return true
	case strings.HasPrefix(word, "AssocGrp") && strings.Contains(word, "Minutes") && !strings.Contains(word, "RunMinutes"):
		return true
	}
	return false
}

// squeueState maps squeue's compact state codes (SPEC.md "Providers").
func squeueState(code string) providers.Status {
	switch code {
	case "PD", "CF", "RQ", "RF":
		return providers.Status{State: providers.Pending}
	case "R", "CG", "SI", "SO", "RS":
		return providers.Status{State: providers.Running}
	case "CD":
		return providers.Status{State: providers.Completed}
	case "F", "NF", "OOM", "BF", "DL", "RV":
		return providers.Status{State: providers.Failed, Message: longState(code)}
	case "CA":
		return providers.Status{State: providers.Cancelled}
	case "TO":
		return providers.Status{State: providers.Timeout}
	case "S", "ST":
		return providers.Status{State: providers.Held, Message: longState(code)}
	case "RH", "RD", "SE":
		// Held until someone releases it (scontrol release).
		return providers.Status{State: providers.Held, Message: longState(code), Stuck: true}
	case "PR":
		// Preempted and not requeued (a requeued job shows PD again).
		return providers.Status{State: providers.Preempted}
	}
	return providers.Status{State: providers.Unknown, Message: fmt.Sprintf("unrecognised squeue state %q", code)}
}

func longState(code string) string {
	return map[string]string{
		"F": "failed", "NF": "node failure", "OOM": "out of memory", "BF": "boot failure",
		"DL": "deadline", "RV": "revoked", "S": "suspended", "ST": "stopped",
		"RH": "requeued, held", "RD": "held by a deleted reservation", "SE": "special exit, held",
	}[code]
}

// ParseSacct reads lines of `sacct -n -X -P -o JobID,State,ExitCode`
// ("123|CANCELLED by 1000|0:15"). When a job has several lines (requeues),
// the last one counts.
func ParseSacct(text string) map[string]providers.Status {
	out := map[string]providers.Status{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) < 2 || f[0] == "" {
			continue
		}
		st := sacctState(f[1])
		if len(f) >= 3 && st.State.Terminal() {
			st.ExitCode = exitCode(f[2])
		}
		out[f[0]] = st
	}
	return out
}

// sacctState maps sacct's long state names; "CANCELLED by 1000" is
// cancelled.
func sacctState(s string) providers.Status {
	word, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	word = strings.TrimRight(word, "+")
	switch word {
	case "PENDING", "REQUEUED", "REQUEUE_FED", "CONFIGURING":
		return providers.Status{State: providers.Pending}
	case "RUNNING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT":
		return providers.Status{State: providers.Running}
	case "COMPLETED":
		return providers.Status{State: providers.Completed}
	case "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED":
		return providers.Status{State: providers.Failed, Message: strings.ToLower(strings.ReplaceAll(word, "_", " "))}
	case "PREEMPTED":
		// sacct's record is final: a requeued job would show REQUEUED.
		return providers.Status{State: providers.Preempted}
	case "CANCELLED":
		return providers.Status{State: providers.Cancelled, Message: strings.ToLower(strings.TrimSpace(s))}
	case "TIMEOUT":
		return providers.Status{State: providers.Timeout}
	case "SUSPENDED", "STOPPED", "REQUEUE_HOLD", "SPECIAL_EXIT", "RESV_DEL_HOLD":
		return providers.Status{State: providers.Held, Message: strings.ToLower(strings.ReplaceAll(word, "_", " "))}
	}
	return providers.Status{State: providers.Unknown, Message: fmt.Sprintf("unrecognised sacct state %q", s)}
}

// exitCode reads sacct's "exit:signal": the exit status, or 128+signal when
// a signal ended the job.
func exitCode(s string) int {
	code, sig, _ := strings.Cut(strings.TrimSpace(s), ":")
	c, _ := strconv.Atoi(code)
	if n, err := strconv.Atoi(sig); err == nil && n > 0 && c == 0 {
		return 128 + n
	}
	return c
}

func chunks(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

func commandLine(name string, args []string) string {
	return strings.TrimSpace(name + " " + strings.Join(args, " "))
}

func cmdError(name string, args []string, res execx.Result, err error) *providers.CommandError {
	return &providers.CommandError{
		Command:  commandLine(name, args),
		ExitCode: res.ExitCode,
		Stderr:   strings.TrimSpace(res.Stderr),
		Err:      err,
	}
}
