package top

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/htex/htex/wire"
)

// updating reports whether -update was given: the flag is defined by
// teatest's golden package, which this test binary links.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// recorded is one line of testdata/stream.jsonl: a snapshot whose status is
// the protobuf JSON of a StatusReply, as the daemon sends it.
type recorded struct {
	At       time.Time       `json:"at"`
	Status   json.RawMessage `json:"status"`
	Jobs     []Job           `json:"jobs"`
	Failures []Failure       `json:"failures"`
}

func loadStream(t *testing.T) []Snapshot {
	t.Helper()
	f, err := os.Open("testdata/stream.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Snapshot
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r recorded
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		st := &wire.StatusReply{}
		if err := protojson.Unmarshal(r.Status, st); err != nil {
			t.Fatal(err)
		}
		out = append(out, Snapshot{At: r.At, Status: st, Jobs: r.Jobs, Failures: r.Failures})
	}
	return out
}

// play feeds the recorded stream to a model of the given size.
func play(t *testing.T, opt Options, w, h int) *Model {
	t.Helper()
	m := New(opt)
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	for _, s := range loadStream(t) {
		m.Update(SnapshotMsg(s))
	}
	return m
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updating() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./top -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./top -update rewrites it)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestViewFromRecordedStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		w, h   int
		golden string
	}{
		{"80x24", 80, 24, "view-80x24.golden"},
		{"narrow 50x24", 50, 24, "view-50x24.golden"},
		{"short 80x12", 80, 12, "view-80x12.golden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := play(t, Options{}, tc.w, tc.h)
			v := m.View()
			lines := strings.Split(v, "\n")
			if len(lines) > tc.h {
				t.Errorf("%d lines, screen has %d", len(lines), tc.h)
			}
			for i, l := range lines {
				if ansi.StringWidth(l) > tc.w {
					t.Errorf("line %d is %d wide, screen %d: %q", i, ansi.StringWidth(l), tc.w, l)
				}
			}
			checkGolden(t, tc.golden, v+"\n")
		})
	}
}

func TestViewPanes(t *testing.T) {
	m := play(t, Options{}, 80, 24)
	v := m.View()
	for _, want := range []string{
		"htex top · demo · slurm",
		"up 2m20s",
		"150 queued · 4 running · 838 succeeded · 8 failed",
		"POOLS: 2, slots 4 busy / 0 idle",
		"job 2", "342/400",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	for _, want := range []string{
		"500/500", "done", // job 1 complete
		"BLOCKS: 1 pending, 2 running",
		"Priority: waiting for higher-priority jobs", // the pending block's reason
		"nid001", "nid002",
		"scaler: 2 blocks wanted",
		"task 640 (job 2) signal: killed by signal 9",
		"task 77 (job 1) timeout: time limit 10s reached",
		"task 5 (job 1) exit 3: simulate: seed 5: no convergence",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	if n := strings.Count(v, "task 5 (job 1)"); n != 1 {
		t.Errorf("failure of task 5 shown %d times, want once (it came in two snapshots)", n)
	}
	// job 2 did 342 tasks in the 15 s recorded (22.8/s), 58 left → ETA 3s
	if !strings.Contains(v, "23/s ETA 3s") {
		t.Errorf("job 2's rate and ETA missing:\n%s", v)
	}
}

func TestColour(t *testing.T) {
	plain := play(t, Options{Colour: false}, 80, 24).View()
	if strings.Contains(plain, "\x1b") {
		t.Errorf("no-colour view has escape sequences:\n%q", plain)
	}
	col := play(t, Options{Colour: true}, 80, 24).View()
	if !strings.Contains(col, "\x1b[") {
		t.Errorf("colour view has no escape sequences")
	}
	if ansi.Strip(col) != plain {
		t.Errorf("colour view differs from the plain one in more than colour:\n%s\n---\n%s", ansi.Strip(col), plain)
	}
}

func TestKeys(t *testing.T) {
	type step struct {
		key          string
		wantSelected uint64 // job marked with ">"
		wantCancel   uint64 // cancel requested for this job, 0 = none
		wantQuit     bool
		wantText     string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"newest selected first", []step{{key: "x", wantSelected: 2}}},
		{"j and k move", []step{{key: "j", wantSelected: 1}, {key: "j", wantSelected: 1}, {key: "k", wantSelected: 2}, {key: "k", wantSelected: 2}}},
		{"arrows move", []step{{key: "down", wantSelected: 1}, {key: "up", wantSelected: 2}}},
		{"cancel asks first, n keeps", []step{
			{key: "c", wantSelected: 2, wantText: "cancel job 2? its unfinished tasks are killed. y/n"},
			{key: "n", wantSelected: 2, wantText: "job 2 not cancelled"}}},
		{"cancel confirmed", []step{
			{key: "j", wantSelected: 1}, {key: "c", wantSelected: 1},
			{key: "y", wantSelected: 1, wantCancel: 1, wantText: "cancelling job 1"}}},
		{"q during confirmation only answers it", []step{{key: "c"}, {key: "q", wantText: "job 2 not cancelled"}}},
		{"f shows failures only", []step{{key: "f", wantText: "f show all"}, {key: "f", wantText: "f failures only"}}},
		{"q quits", []step{{key: "q", wantQuit: true}}},
		{"ctrl+c quits", []step{{key: "ctrl+c", wantQuit: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cancelled uint64
			m := play(t, Options{Cancel: func(id uint64) tea.Cmd {
				return func() tea.Msg { cancelled = id; return CancelledMsg{JobID: id, Message: "done"} }
			}}, 80, 24)
			for _, s := range tc.steps {
				cancelled = 0
				_, cmd := m.Update(keyMsg(s.key))
				var msg tea.Msg
				if cmd != nil {
					msg = cmd()
				}
				if _, quit := msg.(tea.QuitMsg); quit != s.wantQuit {
					t.Errorf("key %q: quit %v, want %v", s.key, quit, s.wantQuit)
				}
				if cancelled != s.wantCancel {
					t.Errorf("key %q: cancel of job %d, want %d", s.key, cancelled, s.wantCancel)
				}
				v := m.View()
				if s.wantSelected != 0 && !strings.Contains(v, "> job "+itoa(s.wantSelected)+" ") {
					t.Errorf("key %q: job %d not selected:\n%s", s.key, s.wantSelected, v)
				}
				if s.wantText != "" && !strings.Contains(v, s.wantText) {
					t.Errorf("key %q: view lacks %q:\n%s", s.key, s.wantText, v)
				}
			}
		})
	}
}

func TestFailuresOnlyHidesCleanJobsAndBlocks(t *testing.T) {
	m := play(t, Options{}, 80, 24)
	// job 3 has no failures
	s := loadStream(t)
	last := s[len(s)-1]
	last.Jobs = append([]Job{{ID: 3, Total: 10, Succeeded: 1}}, last.Jobs...)
	m.Update(SnapshotMsg(last))
	if v := m.View(); !strings.Contains(v, "job 3") {
		t.Fatalf("job 3 missing before f:\n%s", v)
	}
	m.Update(keyMsg("f"))
	v := m.View()
	if strings.Contains(v, "job 3") || strings.Contains(v, "BLOCKS") {
		t.Errorf("failures only still shows job 3 or blocks:\n%s", v)
	}
	if !strings.Contains(v, "job 1") || !strings.Contains(v, "LAST FAILURES") {
		t.Errorf("failures only lacks the failing job or the failures:\n%s", v)
	}
}

func TestPollErrorKeepsPanes(t *testing.T) {
	m := play(t, Options{}, 80, 24)
	m.Update(SnapshotMsg(Snapshot{Err: "no daemon answers"}))
	v := m.View()
	if !strings.Contains(v, "poll failed: no daemon answers") || !strings.Contains(v, "job 1") {
		t.Errorf("a failed poll should show the error over the last panes:\n%s", v)
	}
}

func TestWaitingBeforeFirstSnapshot(t *testing.T) {
	m := New(Options{})
	if v := m.View(); !strings.Contains(v, "waiting for the daemon's status") {
		t.Errorf("view before any snapshot: %q", v)
	}
}

func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
