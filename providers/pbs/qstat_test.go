package pbs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/htex/htex/providers"
)

func TestJobStatus(t *testing.T) {
	n := func(v int) pbsInt { return pbsInt{v: v, ok: true} }
	tests := []struct {
		name  string
		job   job
		state providers.State
		code  int
	}{
		{"queued", job{State: "Q", Substate: n(10)}, providers.Pending, 0},
		{"waiting for start time", job{State: "W"}, providers.Pending, 0},
		{"in transit", job{State: "T"}, providers.Pending, 0},
		{"held", job{State: "H"}, providers.Held, 0},
		{"suspended", job{State: "S"}, providers.Held, 0},
		{"suspended, workstation busy", job{State: "U"}, providers.Held, 0},
		{"running", job{State: "R"}, providers.Running, 0},
		{"exiting", job{State: "E", ExitStatus: n(0)}, providers.Running, 0},
		{"array begun", job{State: "B"}, providers.Running, 0},
		{"lower case", job{State: " r "}, providers.Running, 0},
		{"moved", job{State: "M"}, providers.Unknown, 0},
		{"empty state", job{}, providers.Unknown, 0},
		{"finished ok", job{State: "F", Substate: n(92), ExitStatus: n(0)}, providers.Completed, 0},
		{"finished ok, no substate", job{State: "F", ExitStatus: n(0)}, providers.Completed, 0},
		{"expired subjob ok", job{State: "X", Substate: n(92), ExitStatus: n(0)}, providers.Completed, 0},
		{"exit 1", job{State: "F", Substate: n(93), ExitStatus: n(1)}, providers.Failed, 1},
		{"exit 3", job{State: "F", Substate: n(93), ExitStatus: n(3)}, providers.Failed, 3},
		{"shell killed child", job{State: "F", Substate: n(93), ExitStatus: n(143)}, providers.Failed, 143},
		{"walltime", job{State: "F", Substate: n(93), ExitStatus: n(-29)}, providers.Timeout, -29},
		{"walltime wins over qdel", job{State: "F", Substate: n(91), ExitStatus: n(-29)}, providers.Timeout, -29},
		{"qdel running", job{State: "F", Substate: n(91), ExitStatus: n(271)}, providers.Cancelled, 271},
		{"qdel -W force", job{State: "F", Substate: n(91), ExitStatus: n(265)}, providers.Cancelled, 265},
		{"qdel running, exit 0 on SIGTERM", job{State: "F", Substate: n(91), ExitStatus: n(0)}, providers.Cancelled, 0},
		{"qdel queued", job{State: "F", Substate: n(91)}, providers.Cancelled, 0},
		{"no substate, comment says terminated", job{State: "F", ExitStatus: n(271), Comment: "Job run at Tue Jul 09 at 14:06 on (x1:ncpus=64) and terminated"}, providers.Cancelled, 271},
		{"substate says failed, comment mentions deleted", job{State: "F", Substate: n(93), ExitStatus: n(-19), Comment: "a hook requested for job to be deleted"}, providers.Failed, -19},
		{"signal at walltime (older PBS)", job{State: "F", Substate: n(93), ExitStatus: n(271),
			ResourceList: resources{Walltime: "00:10:00"}, ResourcesUsed: resources{Walltime: "00:10:02"}}, providers.Timeout, 271},
		{"signal before walltime", job{State: "F", Substate: n(93), ExitStatus: n(271),
			ResourceList: resources{Walltime: "00:10:00"}, ResourcesUsed: resources{Walltime: "00:03:00"}}, providers.Failed, 271},
		{"signal, no walltime known", job{State: "F", Substate: n(93), ExitStatus: n(265)}, providers.Failed, 265},
		{"memory limit", job{State: "F", Substate: n(93), ExitStatus: n(-27)}, providers.Failed, -27},
		{"never ran, no exit status", job{State: "F", Substate: n(93)}, providers.Failed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.job.status()
			if got.State != tt.state || got.ExitCode != tt.code {
				t.Errorf("status() = %+v; want %s, exit %d", got, tt.state, tt.code)
			}
			if got.State.Terminal() && got.Message == "" && tt.job.ExitStatus.ok && tt.job.ExitStatus.v != 0 {
				t.Errorf("terminal state without a message: %+v", got)
			}
		})
	}
}

func TestPbsIntShapes(t *testing.T) {
	tests := []struct {
		in   string
		want pbsInt
	}{
		{`0`, pbsInt{0, true}}, {`-29`, pbsInt{-29, true}}, {`"271"`, pbsInt{271, true}},
		{`" 3 "`, pbsInt{3, true}}, {`3.0`, pbsInt{3, true}}, {`null`, pbsInt{}},
		{`"n/a"`, pbsInt{}}, {`{}`, pbsInt{}},
	}
	for _, tt := range tests {
		var got struct {
			X pbsInt `json:"x"`
		}
		if err := json.Unmarshal([]byte(`{"x":`+tt.in+`}`), &got); err != nil || got.X != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.in, got.X, err, tt.want)
		}
	}
}

func TestRepairJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"\u@\h:\w\$ "}`, `{"a":"\\u@\\h:\\w\\$ "}`},
		{`{"a":"x\;y"}`, `{"a":"x\\;y"}`},
		{`{"a":"é\u00e9"}`, `{"a":"é\u00e9"}`},
		{"{\"a\":\"tab\there\nnewline\"}", `{"a":"tab\u0009here\u000anewline"}`},
		{`{"a":005,"b":1.2.3,"c":nan,"d":-0.5e3,"e":true,"f":null}`, `{"a":"005","b":"1.2.3","c":"nan","d":-0.5e3,"e":true,"f":null}`},
		{`{"a":"say "hi" to pbs","b":1}`, `{"a":"say \"hi\" to pbs","b":1}`},
		{`{"a":"trailing backslash\`, `{"a":"trailing backslash\\"`},
	}
	for _, tt := range tests {
		if got := string(repairJSON([]byte(tt.in))); got != tt.want {
			t.Errorf("repairJSON(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestRepairJSONKeepsValidJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal(err, files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("%s is not valid JSON", f)
		}
		if got := repairJSON(b); string(got) != string(b) {
			t.Errorf("%s: repairJSON changed valid JSON", f)
		}
	}
}

func TestParseQstatSkipsPreambleAndMergesDocuments(t *testing.T) {
	out := "polaris-pbs-01: \n" +
		`{"timestamp":1,"Jobs":{"1.s":{"job_state":"R"}}}` + "\n" +
		`{"timestamp":2,"Jobs":{"2.s":{"job_state":"Q"}}}` + "\n"
	jobs, err := parseQstat([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs["1.s"].State != "R" || jobs["2.s"].State != "Q" {
		t.Fatalf("jobs = %+v", jobs)
	}
}

func FuzzParseQstat(f *testing.F) {
	for _, name := range []string{"qstat-running.json", "qstat-finished.json", "qstat-quirks.txt", "qstat-garbage.txt",
		"openpbs-queued.json", "openpbs-running.json", "openpbs-finished.json", "openpbs-none.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Jobs":{"1.s":{"job_state":"F","Exit_status":"x","substate":91}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		jobs, err := parseQstat(b)
		if err == nil {
			for _, j := range jobs {
				_ = j.status()
			}
		}
		if json.Valid(b) {
			if got := repairJSON(b); string(got) != string(b) {
				t.Fatalf("repairJSON changed valid JSON %q into %q", b, got)
			}
		}
	})
}
