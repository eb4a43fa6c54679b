package pbs

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

const srv = "polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov"

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// answer is a Fake that gives every call the same result.
func answer(res execx.Result, err error) *execx.Fake {
	return &execx.Fake{Respond: func(execx.Call) (execx.Result, error) { return res, err }}
}

func TestSubmit(t *testing.T) {
	tests := []struct {
		name    string
		res     execx.Result
		runErr  error
		want    string
		wantErr string // substring; "" = no error
		code    int
	}{
		{name: "polaris id", res: execx.Result{Stdout: "2143563." + srv + "\n"}, want: "2143563." + srv},
		{name: "banner lines before the id", res: execx.Result{Stdout: "Submit filter: project MyProject has 1200 node-hours left\n\n2143563.polaris-pbs-01\n2143564.polaris-pbs-01\n"}, want: "2143563.polaris-pbs-01"},
		{name: "array job", res: execx.Result{Stdout: "4000123[]." + srv + "\n"}, want: "4000123[]." + srv},
		{name: "no server suffix", res: execx.Result{Stdout: "77\n"}, want: "77"},
		{name: "CRLF and spaces", res: execx.Result{Stdout: "  88.srv-1 \r\n"}, want: "88.srv-1"},
		{name: "no id at all", res: execx.Result{Stdout: "job submitted\n"}, wantErr: `no job id in qsub output "job submitted\n"`},
		{name: "qsub refuses", res: execx.Result{ExitCode: 170, Stderr: "qsub: Unknown queue\n"}, wantErr: "qsub failed (exit 170): qsub: Unknown queue", code: 170},
		{name: "qsub exits non-zero after printing an id", res: execx.Result{ExitCode: 1, Stdout: "12.srv\n", Stderr: "qsub: would exceed queue generic's per-user limit\n"}, wantErr: "per-user limit", code: 1},
		{name: "qsub times out", runErr: context.DeadlineExceeded, wantErr: "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := answer(tt.res, tt.runErr)
			p := New(config.Provider{Kind: "pbs"}, f)
			sub := providers.Submission{BlockID: 7, Name: "htex-polaris-7", ScriptPath: "/run/blocks/7/submit.sh", Dir: "/run/blocks/7", Nodes: 2}
			got, err := p.Submit(context.Background(), sub)
			if want := []execx.Call{{Name: "qsub", Args: []string{"/run/blocks/7/submit.sh"}, Dir: "/run/blocks/7"}}; !reflect.DeepEqual(f.Calls, want) {
				t.Errorf("calls = %+v, want %+v", f.Calls, want)
			}
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Submit = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Submit error = %v; want it to contain %q", err, tt.wantErr)
			}
			var ce *providers.CommandError
			if !errors.As(err, &ce) || ce.Command != "qsub" || ce.ExitCode != tt.code {
				t.Fatalf("error %v: want a qsub *providers.CommandError with exit %d", err, tt.code)
			}
			if tt.runErr != nil && !errors.Is(err, tt.runErr) {
				t.Errorf("error %v does not wrap %v", err, tt.runErr)
			}
		})
	}
}

func TestSubmitWithoutScriptPath(t *testing.T) {
	f := answer(execx.Result{}, nil)
	if _, err := New(config.Provider{}, f).Submit(context.Background(), providers.Submission{BlockID: 1}); err == nil {
		t.Fatal("want an error")
	}
	if len(f.Calls) != 0 {
		t.Errorf("ran %v", f.Calls)
	}
}

func TestStatusFixtures(t *testing.T) {
	type want struct {
		state providers.State
		code  int
		msg   string // substring of Message
		stuck bool
	}
	id := func(n string) string { return n + "." + srv }
	tests := []struct {
		fixture string
		ids     []string
		want    map[string]want
	}{
		{"qstat-queued.json", []string{id("2143560"), "2143561", "2143562.polaris-pbs-01"}, map[string]want{
			id("2143560"):            {providers.Pending, 0, "Not Running: Insufficient amount of resource", false},
			"2143561":                {providers.Held, 0, "held (job_state H); job held, too many failed attempts to run", true},
			"2143562.polaris-pbs-01": {providers.Pending, 0, "", false},
		}},
		{"qstat-stuck.json", []string{"2143580", "2143581", "2143582"}, map[string]want{
			"2143580": {providers.Pending, 0, "Can Never Run: Insufficient amount of queue resource", true},
			"2143581": {providers.Held, 0, "held", true},
			"2143582": {providers.Pending, 0, "Job requeued", false},
		}},
		{"qstat-running.json", []string{id("2143563"), id("2143564")}, map[string]want{
			id("2143563"): {providers.Running, 0, "Job run at", false},
			id("2143564"): {providers.Running, 0, "", false}, // E: exiting, not terminal yet
		}},
		{"qstat-finished.json", []string{"2143565", "2143566", "2143567", "2143568", "2143569", "2143570", "2143571", "2143572", "2143573"}, map[string]want{
			"2143565": {providers.Completed, 0, "and finished", false},
			"2143566": {providers.Failed, 1, "Exit_status 1", false},
			"2143567": {providers.Timeout, -29, "JOB_EXEC_KILL_WALLTIME", false},
			"2143568": {providers.Cancelled, 271, "killed by signal 15", false},
			"2143569": {providers.Cancelled, 0, "deleted with qdel", false},
			"2143570": {providers.Failed, -27, "JOB_EXEC_KILL_MEM", false},
			"2143571": {providers.Failed, 265, "killed by signal 9", false},
			"2143572": {providers.Timeout, 271, "walltime exceeded", false}, // older PBS: 271 at the limit
			"2143573": {providers.Failed, -3, "JOB_EXEC_RETRY", false},
		}},
		{"qstat-array.json", []string{"4000123[]." + srv}, map[string]want{
			"4000123[]." + srv: {providers.Running, 0, "Began", false},
		}},
		{"qstat-quirks.txt", []string{"2143563", "2143564"}, map[string]want{
			"2143563": {providers.Running, 0, "Job run at", false},
			"2143564": {providers.Failed, 1, "Exit_status 1", false},
		}},
		{"qstat-none.json", []string{"1", "2"}, map[string]want{
			"1": {providers.Unknown, 0, "", false},
			"2": {providers.Unknown, 0, "", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			f := answer(execx.Result{Stdout: fixture(t, tt.fixture)}, nil)
			got, err := New(config.Provider{Kind: "pbs"}, f).Status(context.Background(), tt.ids)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Calls) != 1 {
				t.Fatalf("%d qstat calls, want 1", len(f.Calls))
			}
			wantArgs := append([]string{"-E", "-f", "-F", "json", "-x"}, tt.ids...)
			if c := f.Calls[0]; c.Name != "qstat" || !reflect.DeepEqual(c.Args, wantArgs) {
				t.Errorf("call = %s %q, want qstat %q", c.Name, c.Args, wantArgs)
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d statuses, want %d: %+v", len(got), len(tt.want), got)
			}
			for id, w := range tt.want {
				g, ok := got[id]
				if !ok {
					t.Errorf("%s: missing", id)
					continue
				}
				if g.State != w.state || g.ExitCode != w.code || !strings.Contains(g.Message, w.msg) || g.Stuck != w.stuck {
					t.Errorf("%s = %+v; want state %s, exit %d, message containing %q, stuck %v", id, g, w.state, w.code, w.msg, w.stuck)
				}
			}
		})
	}
}

// TestStatusOpenPBSFixtures reads what a real OpenPBS 23.06.06 printed for
// jobs in every state it can show (captured by e2e's TestOpenPBSQstatStates,
// see testdata/README.md): the same mapping as the PBS Pro-shaped fixtures.
func TestStatusOpenPBSFixtures(t *testing.T) {
	type want struct {
		state providers.State
		code  int
		msg   string
	}
	tests := []struct {
		fixture string
		want    map[string]want
	}{
		{"openpbs-queued.json", map[string]want{
			"94.pbshost": {providers.Held, 0, "held (job_state H)"},
			"95":         {providers.Pending, 0, "Can Never Run: Not enough total nodes available"},
			"96.pbshost": {providers.Pending, 0, "waiting for its start time (job_state W)"},
		}},
		{"openpbs-running.json", map[string]want{
			"97.pbshost":   {providers.Running, 0, "Job run at"},
			"98[].pbshost": {providers.Running, 0, "array job begun (job_state B); Job Array Began"},
		}},
		{"openpbs-finished.json", map[string]want{
			"99.pbshost":  {providers.Completed, 0, "and finished"},
			"100.pbshost": {providers.Failed, 3, "Exit_status 3; Job run at"},
			"101.pbshost": {providers.Cancelled, 0, "deleted with qdel (substate 91)"},
			"102.pbshost": {providers.Cancelled, 0, "deleted with qdel (substate 91)"},
			"103.pbshost": {providers.Timeout, -29, "JOB_EXEC_KILL_WALLTIME"},
		}},
		{"openpbs-none.json", map[string]want{
			"99.pbshost": {providers.Unknown, 0, "qstat does not know this job"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			var ids []string
			for id := range tt.want {
				ids = append(ids, id)
			}
			f := answer(execx.Result{Stdout: fixture(t, tt.fixture)}, nil)
			got, err := New(config.Provider{Kind: "pbs"}, f).Status(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			for id, w := range tt.want {
				g := got[id]
				if g.State != w.state || g.ExitCode != w.code || !strings.Contains(g.Message, w.msg) {
					t.Errorf("%s = %+v; want state %s, exit %d, message containing %q", id, g, w.state, w.code, w.msg)
				}
			}
		})
	}
}

func TestStatusUnknownIDs(t *testing.T) {
	running := fixture(t, "qstat-running.json")
	tests := []struct {
		name string
		res  execx.Result
		ids  []string
		want map[string]providers.State
	}{
		{
			name: "some unknown",
			res:  execx.Result{Stdout: running, ExitCode: 153, Stderr: "qstat: Unknown Job Id 999." + srv + "\n"},
			ids:  []string{"2143563", "999." + srv},
			want: map[string]providers.State{"2143563": providers.Running, "999." + srv: providers.Unknown},
		},
		{
			name: "all unknown, nothing on stdout",
			res:  execx.Result{ExitCode: 153, Stderr: "qstat: Unknown Job Id 1.srv\nqstat: Unknown Job Id 2.srv\n"},
			ids:  []string{"1.srv", "2.srv"},
			want: map[string]providers.State{"1.srv": providers.Unknown, "2.srv": providers.Unknown},
		},
		{
			name: "history purged",
			res:  execx.Result{ExitCode: 35, Stderr: "qstat: 5.srv Job has finished, use -x or -H to obtain historical job information\n"},
			ids:  []string{"5.srv"},
			want: map[string]providers.State{"5.srv": providers.Unknown},
		},
		{
			name: "exit 153 with empty stderr",
			res:  execx.Result{ExitCode: 153},
			ids:  []string{"5.srv"},
			want: map[string]providers.State{"5.srv": providers.Unknown},
		},
		{
			name: "id of another server with the same number",
			res:  execx.Result{Stdout: running},
			ids:  []string{"2143563.other-server"},
			want: map[string]providers.State{"2143563.other-server": providers.Running},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(config.Provider{}, answer(tt.res, nil)).Status(context.Background(), tt.ids)
			if err != nil {
				t.Fatal(err)
			}
			for id, w := range tt.want {
				if got[id].State != w {
					t.Errorf("%s: %+v, want %s", id, got[id], w)
				}
			}
		})
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		name    string
		res     execx.Result
		runErr  error
		bad     bool   // want ErrBadOutput rather than a CommandError
		wantErr string // substring
	}{
		{name: "server down", res: execx.Result{ExitCode: 1, Stderr: "Connection refused\nqstat: cannot connect to server polaris-pbs-01 (errno=15010)\n"}, wantErr: "errno=15010"},
		{name: "unknown ids and a real error", res: execx.Result{ExitCode: 153, Stderr: "qstat: Unknown Job Id 1.srv\nqstat: Unauthorized Request\n"}, wantErr: "Unauthorized Request"},
		{name: "non-zero exit, no explanation", res: execx.Result{ExitCode: 2}, wantErr: "qstat failed (exit 2)"},
		{name: "timeout", runErr: context.DeadlineExceeded, wantErr: "deadline exceeded"},
		{name: "not JSON", res: execx.Result{Stdout: fixture(t, "qstat-garbage.txt")}, bad: true, wantErr: `output begins "<html><head><title>503`},
		{name: "truncated", res: execx.Result{Stdout: fixture(t, "qstat-running.json")[:700]}, bad: true, wantErr: `"{\n\t\"timestamp\":1720538442`},
		{name: "jobs is not an object", res: execx.Result{Stdout: `{"Jobs":[1,2]`}, bad: true, wantErr: "unreadable qstat output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(config.Provider{}, answer(tt.res, tt.runErr)).Status(context.Background(), []string{"1.srv"})
			if err == nil {
				t.Fatalf("Status = %+v, want an error", got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			var ce *providers.CommandError
			if tt.bad != errors.Is(err, ErrBadOutput) || tt.bad == errors.As(err, &ce) {
				t.Errorf("error %v: bad output %v, command error %v; want bad output %v", err, errors.Is(err, ErrBadOutput), errors.As(err, &ce), tt.bad)
			}
		})
	}
}

func TestStatusNoIDsRunsNothing(t *testing.T) {
	f := answer(execx.Result{}, nil)
	got, err := New(config.Provider{}, f).Status(context.Background(), nil)
	if err != nil || len(got) != 0 || len(f.Calls) != 0 {
		t.Fatalf("Status(nil) = %v, %v after %v", got, err, f.Calls)
	}
}

// deadlineRunner records whether the context it got has a deadline.
type deadlineRunner struct{ deadline bool }

func (d *deadlineRunner) Run(ctx context.Context, _, _ string, _ ...string) (execx.Result, error) {
	_, d.deadline = ctx.Deadline()
	return execx.Result{Stdout: "1.srv\n"}, nil
}

func TestCmdTimeoutBoundsEachCommand(t *testing.T) {
	r := &deadlineRunner{}
	p := New(config.Provider{CmdTimeout: config.Duration(5 * time.Second)}, r)
	if _, err := p.Submit(context.Background(), providers.Submission{ScriptPath: "/s.sh"}); err != nil {
		t.Fatal(err)
	}
	if !r.deadline {
		t.Error("qsub ran without a deadline although cmd_timeout is set")
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name    string
		res     execx.Result
		wantErr string
	}{
		{name: "ok"},
		{name: "already finished", res: execx.Result{ExitCode: 35, Stderr: "qdel: Job has finished 1.srv\n"}},
		{name: "unknown", res: execx.Result{ExitCode: 153, Stderr: "qdel: Unknown Job Id 2.srv\n"}},
		{name: "exiting", res: execx.Result{ExitCode: 168, Stderr: "qdel: Request invalid for state of job 1.srv\n"}},
		{name: "refused", res: execx.Result{ExitCode: 159, Stderr: "qdel: Unauthorized Request  1.srv\n"}, wantErr: "qdel failed (exit 159): qdel: Unauthorized Request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := answer(tt.res, nil)
			err := New(config.Provider{}, f).Cancel(context.Background(), []string{"1.srv", "2.srv"})
			if want := []execx.Call{{Name: "qdel", Args: []string{"1.srv", "2.srv"}}}; !reflect.DeepEqual(f.Calls, want) {
				t.Errorf("calls = %+v, want %+v", f.Calls, want)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *providers.CommandError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ce) {
				t.Fatalf("Cancel error = %v, want a CommandError containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCancelManyIDsInChunks(t *testing.T) {
	ids := make([]string, 2*qdelChunk+1)
	for i := range ids {
		ids[i] = strings.Repeat("9", 7) + "." + srv
	}
	f := answer(execx.Result{}, nil)
	if err := New(config.Provider{}, f).Cancel(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	if len(f.Calls) != 3 || len(f.Calls[2].Args) != 1 {
		t.Fatalf("%d qdel calls (last with %d ids), want 3 (last with 1)", len(f.Calls), len(f.Calls[len(f.Calls)-1].Args))
	}
	if err := New(config.Provider{}, f).Cancel(context.Background(), nil); err != nil || len(f.Calls) != 3 {
		t.Fatalf("Cancel(nil) = %v and ran qdel", err)
	}
}
