package slurm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/config"
	"github.com/htex/htex/internal/execx"
	"github.com/htex/htex/providers"
)

const (
	invalidJobID      = "slurm_load_jobs error: Invalid job id specified\n"
	accountingOff     = "Slurm accounting storage is disabled\n"
	badPartitionError = "sbatch: error: invalid partition specified: nope\nsbatch: error: Batch job submission failed: Invalid partition name specified\n"
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// answers makes a Fake that answers each command name with a fixed result.
func answers(m map[string]execx.Result) *execx.Fake {
	return &execx.Fake{Respond: func(c execx.Call) (execx.Result, error) {
		return m[c.Name], nil
	}}
}

func TestName(t *testing.T) {
	if got := New(config.Provider{}, &execx.Fake{}).Name(); got != "slurm" {
		t.Errorf("Name() = %q", got)
	}
}

func TestSubmit(t *testing.T) {
	cases := []struct {
		name   string
		stdout string
		want   string
	}{
		{"plain", "4242\n", "4242"},
		{"cluster suffix", "4242;alpha\n", "4242"},
		{"warning line first", "sbatch: note: something\n4242\n", "4242"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := answers(map[string]execx.Result{"sbatch": {Stdout: c.stdout}})
			id, err := New(config.Provider{}, f).Submit(context.Background(), providers.Submission{
				BlockID: 3, ScriptPath: "/run/blocks/3/submit.sh", Dir: "/run/blocks/3", Nodes: 2,
			})
			if err != nil || id != c.want {
				t.Fatalf("Submit = %q, %v; want %q", id, err, c.want)
			}
			want := []execx.Call{{Name: "sbatch", Args: []string{"--parsable", "/run/blocks/3/submit.sh"}, Dir: "/run/blocks/3"}}
			if !reflect.DeepEqual(f.Calls, want) {
				t.Errorf("calls %+v, want %+v", f.Calls, want)
			}
		})
	}
}

func TestSubmitErrors(t *testing.T) {
	timeout := context.DeadlineExceeded
	cases := []struct {
		name    string
		res     execx.Result
		err     error
		want    string
		wantErr error
	}{
		{"bad partition", execx.Result{ExitCode: 1, Stderr: badPartitionError}, nil, "Invalid partition name specified", nil},
		{"no job id", execx.Result{Stdout: "Submitted batch job\n"}, nil, "no job id", nil},
		{"timeout", execx.Result{}, timeout, "deadline exceeded", timeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &execx.Fake{Respond: func(execx.Call) (execx.Result, error) { return c.res, c.err }}
			_, err := New(config.Provider{}, f).Submit(context.Background(), providers.Submission{ScriptPath: "/x/submit.sh"})
			var ce *providers.CommandError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *providers.CommandError", err, err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(ce.Command, "sbatch --parsable /x/submit.sh") {
				t.Errorf("error %q (command %q), want it to contain %q", err, ce.Command, c.want)
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("error %v does not wrap %v", err, c.wantErr)
			}
		})
	}
	if _, err := New(config.Provider{}, &execx.Fake{}).Submit(context.Background(), providers.Submission{}); err == nil {
		t.Error("Submit without a script path succeeded")
	}
}

func TestParseSqueue(t *testing.T) {
	got := ParseSqueue(fixture(t, "squeue-mixed.txt"))
	want := map[string]providers.Status{
		"1": {State: providers.Completed},
		"2": {State: providers.Failed, Message: "failed: NonZeroExitCode"},
		"3": {State: providers.Cancelled},
		"4": {State: providers.Timeout, Message: "TimeLimit"},
		"5": {State: providers.Failed, Message: "failed: BadConstraints"},
		"6": {State: providers.Completed},
		"7": {State: providers.Running},
		"8": {State: providers.Pending, Message: "Priority"},
		"9": {State: providers.Pending, Message: "JobHeldUser", Stuck: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSqueue:\n got %+v\nwant %+v", got, want)
	}
	got = ParseSqueue(fixture(t, "squeue-clusters.txt"))
	want = map[string]providers.Status{
		"5001": {State: providers.Running},
		"5002": {State: providers.Pending, Message: "Resources"},
		"77":   {State: providers.Pending, Message: "ReqNodeNotAvail, UnavailableNodes:nid[001-004]"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSqueue (clusters):\n got %+v\nwant %+v", got, want)
	}
}

// TestParseSqueueReasons: every pending reason reaches the status message
// verbatim, and those that never clear by themselves are marked stuck.
func TestParseSqueueReasons(t *testing.T) {
	got := ParseSqueue(fixture(t, "squeue-reasons.txt"))
	pd := func(reason string, stuck bool) providers.Status {
		return providers.Status{State: providers.Pending, Message: reason, Stuck: stuck}
	}
	want := map[string]providers.Status{
		"201": pd("JobHeldUser", true),
		"202": pd("JobHeldAdmin", true),
		"203": pd("InvalidAccount", true),
		"204": pd("InvalidQOS", true),
		"205": pd("AssocGrpCPUMinutesLimit", true),
		"206": pd("AssocGrpCpuLimit", false), // clears as the group's running jobs end
		"207": pd("QOSMaxWallDurationPerJobLimit", true),
		"208": pd("QOSMaxCpuPerJobLimit", true),
		"209": pd("AssocMaxNodesPerJobLimit", true),
		"210": pd("PartitionConfig", true),
		"211": pd("ReqNodeNotAvail, Reserved for maintenance", false),
		"212": pd("Priority", false),
		"213": pd("Resources", false),
		"214": pd("Dependency", false),
		"215": pd("DependencyNeverSatisfied", true),
		"216": {State: providers.Held, Message: "requeued, held: JobHeldAdmin", Stuck: true},
		"217": {State: providers.Held, Message: "held by a deleted reservation: ReqNodeNotAvail, Reserved for maintenance", Stuck: true},
		"218": {State: providers.Preempted},
		"219": pd("BeginTime", false),
		"220": pd("MaxCpuPerAccount", true),
		"221": pd("AssocGrpNodeRunMinutes", false),
		"222": pd("QOSGrpNodeLimit", false),
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("job %s: %+v, want %+v", id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("ParseSqueue gave %d jobs, want %d", len(got), len(want))
	}
}

func TestSqueueStates(t *testing.T) {
	for code, want := range map[string]providers.State{
		"PD": providers.Pending, "CF": providers.Pending,
		"R": providers.Running, "CG": providers.Running,
		"CD": providers.Completed,
		"F":  providers.Failed, "NF": providers.Failed, "OOM": providers.Failed, "BF": providers.Failed, "DL": providers.Failed,
		"CA": providers.Cancelled,
		"TO": providers.Timeout,
		"S":  providers.Held, "ST": providers.Held,
		"PR": providers.Preempted, "RH": providers.Held, "RD": providers.Held, "SE": providers.Held,
		"ZZ": providers.Unknown,
	} {
		if got := squeueState(code).State; got != want {
			t.Errorf("squeue state %s → %s, want %s", code, got, want)
		}
	}
}

func TestParseSacct(t *testing.T) {
	got := ParseSacct(fixture(t, "sacct.txt"))
	want := map[string]providers.Status{
		"101": {State: providers.Completed},
		"102": {State: providers.Failed, ExitCode: 1, Message: "failed"},
		"103": {State: providers.Cancelled, ExitCode: 143, Message: "cancelled by 1000"},
		"104": {State: providers.Timeout},
		"105": {State: providers.Failed, ExitCode: 253, Message: "out of memory"},
		"106": {State: providers.Failed, Message: "node fail"},
		"107": {State: providers.Pending},
		"108": {State: providers.Running},
		"109": {State: providers.Pending},
		"110": {State: providers.Preempted},
		"111": {State: providers.Held, Message: "suspended"},
		"112": {State: providers.Failed, Message: "boot fail"},
		"113": {State: providers.Failed, Message: "deadline"},
		"114": {State: providers.Failed, ExitCode: 137, Message: "failed"},
		"115": {State: providers.Completed},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("sacct job %s: %+v, want %+v", id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("ParseSacct gave %d jobs, want %d", len(got), len(want))
	}
}

func TestStatus(t *testing.T) {
	f := answers(map[string]execx.Result{
		"squeue": {Stdout: "7 R None\n8 PD Priority\n2 F NonZeroExitCode\n"},
		"sacct":  {Stdout: "101|COMPLETED|0:0\n103|CANCELLED by 0|0:0\n"},
	})
	s := New(config.Provider{}, f)
	got, err := s.Status(context.Background(), []string{"7", "8", "2", "101", "103", "999", "7", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]providers.State{
		"7": providers.Running, "8": providers.Pending, "2": providers.Failed,
		"101": providers.Completed, "103": providers.Cancelled, "999": providers.Unknown,
	}
	if len(got) != len(want) {
		t.Errorf("Status gave %d jobs, want %d: %+v", len(got), len(want), got)
	}
	for id, w := range want {
		if got[id].State != w {
			t.Errorf("job %s: %s, want %s", id, got[id].State, w)
		}
	}
	wantCalls := []execx.Call{
		{Name: "squeue", Args: []string{"-h", "-t", "all", "-j", "7,8,2,101,103,999", "-o", "%i %t %r"}},
		{Name: "sacct", Args: []string{"-n", "-X", "-P", "-j", "101,103,999", "-o", "JobID,State,ExitCode"}},
	}
	if !reflect.DeepEqual(f.Calls, wantCalls) {
		t.Errorf("calls:\n got %+v\nwant %+v", f.Calls, wantCalls)
	}

	// Terminal states are kept: the next poll asks only about the others,
	// and a job that has left both squeue and sacct keeps its final state.
	f.Calls = nil
	f.Respond = func(c execx.Call) (execx.Result, error) {
		if c.Name == "squeue" {
			return execx.Result{Stdout: "7 CD None\n"}, nil
		}
		return execx.Result{ExitCode: 1, Stderr: accountingOff}, nil
	}
	got, err = s.Status(context.Background(), []string{"7", "8", "2", "101"})
	if err != nil {
		t.Fatal(err)
	}
	if got["7"].State != providers.Completed || got["2"].State != providers.Failed || got["101"].State != providers.Completed || got["8"].State != providers.Unknown {
		t.Errorf("second poll: %+v", got)
	}
	if j := f.Calls[0].Args[4]; j != "7,8" {
		t.Errorf("second squeue asked for %q, want 7,8", j)
	}
}

func TestStatusSqueueForgotAll(t *testing.T) {
	// squeue -j with only ids the controller has purged fails with "Invalid
	// job id specified"; that is not an error, and sacct is asked instead.
	f := answers(map[string]execx.Result{
		"squeue": {ExitCode: 1, Stderr: invalidJobID},
		"sacct":  {ExitCode: 1, Stderr: accountingOff},
	})
	got, err := New(config.Provider{}, f).Status(context.Background(), []string{"12"})
	if err != nil {
		t.Fatal(err)
	}
	if st := got["12"]; st.State != providers.Unknown || !strings.Contains(st.Message, "accounting storage is disabled") {
		t.Errorf("job 12: %+v, want unknown with sacct's message", st)
	}
	if len(f.Calls) != 2 {
		t.Errorf("calls %+v", f.Calls)
	}
}

func TestStatusAccountingDisabledAskedOnce(t *testing.T) {
	f := answers(map[string]execx.Result{
		"squeue": {Stdout: "5 R None\n"},
		"sacct":  {ExitCode: 1, Stderr: accountingOff},
	})
	s := New(config.Provider{}, f)
	for i := 0; i < 3; i++ {
		got, err := s.Status(context.Background(), []string{"5", "6"})
		if err != nil {
			t.Fatal(err)
		}
		if got["5"].State != providers.Running || got["6"].State != providers.Unknown ||
			got["6"].Message != "not listed by squeue; sacct: Slurm accounting storage is disabled" && i > 0 {
			t.Errorf("poll %d: %+v", i, got)
		}
	}
	n := 0
	for _, c := range f.Calls {
		if c.Name == "sacct" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("sacct asked %d times, want once", n)
	}
}

func TestStatusSqueueFails(t *testing.T) {
	f := answers(map[string]execx.Result{
		"squeue": {ExitCode: 1, Stderr: "squeue: error: Unable to contact slurm controller (connect failure)\n"},
	})
	_, err := New(config.Provider{}, f).Status(context.Background(), []string{"12"})
	var ce *providers.CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Stderr, "Unable to contact slurm controller") || ce.ExitCode != 1 {
		t.Fatalf("error %v, want a CommandError with squeue's stderr", err)
	}
}

func TestStatusNoIDs(t *testing.T) {
	f := &execx.Fake{}
	got, err := New(config.Provider{}, f).Status(context.Background(), nil)
	if err != nil || len(got) != 0 || len(f.Calls) != 0 {
		t.Errorf("Status(nil) = %v, %v with calls %+v", got, err, f.Calls)
	}
}

func TestClusters(t *testing.T) {
	f := answers(map[string]execx.Result{
		"squeue": {Stdout: fixture(t, "squeue-clusters.txt")},
		"sacct":  {Stdout: ""},
	})
	s := New(config.Provider{Clusters: "alpha,beta"}, f)
	got, err := s.Status(context.Background(), []string{"5001", "77", "6"})
	if err != nil {
		t.Fatal(err)
	}
	if got["5001"].State != providers.Running || got["77"].State != providers.Pending || got["6"].State != providers.Unknown {
		t.Errorf("Status: %+v", got)
	}
	if err := s.Cancel(context.Background(), []string{"5001"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Calls {
		if c.Args[0] != "--clusters=alpha,beta" {
			t.Errorf("%s %v lacks --clusters", c.Name, c.Args)
		}
	}
	if len(f.Calls) != 3 {
		t.Errorf("calls %+v", f.Calls)
	}
}

func TestCancel(t *testing.T) {
	f := &execx.Fake{}
	s := New(config.Provider{}, f)
	if err := s.Cancel(context.Background(), []string{"7", "", "8"}); err != nil {
		t.Fatal(err)
	}
	if want := []execx.Call{{Name: "scancel", Args: []string{"7", "8"}}}; !reflect.DeepEqual(f.Calls, want) {
		t.Errorf("calls %+v, want %+v", f.Calls, want)
	}
	f.Calls = nil
	if err := s.Cancel(context.Background(), nil); err != nil || len(f.Calls) != 0 {
		t.Errorf("Cancel(nil) = %v with calls %+v", err, f.Calls)
	}

	// A job that has already ended is not an error.
	f.Respond = func(execx.Call) (execx.Result, error) {
		return execx.Result{ExitCode: 1, Stderr: "scancel: error: Kill job error on job id 7: Job/step already completing or completed\n"}, nil
	}
	if err := s.Cancel(context.Background(), []string{"7"}); err != nil {
		t.Errorf("cancelling a finished job: %v", err)
	}
	f.Respond = func(execx.Call) (execx.Result, error) {
		return execx.Result{ExitCode: 1, Stderr: "scancel: error: Kill job error on job id 7: Access/permission denied\n"}, nil
	}
	err := s.Cancel(context.Background(), []string{"7"})
	var ce *providers.CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Stderr, "permission denied") {
		t.Errorf("error %v, want a CommandError with scancel's stderr", err)
	}
}

func TestChunks(t *testing.T) {
	ids := make([]string, 2*maxIDsPerCall+1)
	for i := range ids {
		ids[i] = "1"
	}
	c := chunks(ids, maxIDsPerCall)
	if len(c) != 3 || len(c[2]) != 1 {
		t.Errorf("chunks: %d parts", len(c))
	}
}

func TestDefaultRunner(t *testing.T) {
	s := New(config.Provider{CmdTimeout: config.Duration(3 * time.Second)}, nil)
	if e, ok := s.runner.(execx.Exec); !ok || e.Timeout != 3*time.Second {
		t.Errorf("default runner %#v, want execx.Exec with the cmd_timeout", s.runner)
	}
}
