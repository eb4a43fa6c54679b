package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestListenAddr(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "9464", want: "127.0.0.1:9464"},
		{in: ":9464", want: "127.0.0.1:9464"},
		{in: "0.0.0.0:9464", want: "0.0.0.0:9464"},
		{in: "10.1.2.3:0", want: "10.1.2.3:0"},
		{in: "[::1]:9464", want: "[::1]:9464"},
		{in: "", err: "empty"},
		{in: "localhost", err: `--metrics "localhost": want PORT or HOST:PORT`},
		{in: "host:http", err: `port "http" is not a number`},
		{in: ":70000", err: `port "70000" is not a number`},
	} {
		got, err := ListenAddr(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ListenAddr(%q): error %v, want one with %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCountersAndGauges(t *testing.T) {
	m := New()
	m.TaskFinished("succeeded", "", 2*time.Millisecond)
	m.TaskFinished("succeeded", "", 0) // a task of a previous daemon: counted, no latency
	m.TaskFinished("failed", "exit", time.Second)
	m.TaskFinished("cancelled", "cancelled", time.Second)
	m.TaskDispatched(time.Millisecond)
	m.JournalCommitted(3*time.Millisecond, 40)
	m.ScalerDecided(2, 1)
	m.ScalerDecided(0, 0)
	m.SetSource(func() Snapshot {
		return Snapshot{Queued: 7, Running: 3, Pools: 2, Slots: 8, Busy: 3, Blocks: map[string]int{"running": 2, "pending": 1, "odd": 1}}
	})
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"tasks succeeded", testutil.ToFloat64(m.tasks.WithLabelValues("succeeded")), 2},
		{"tasks failed", testutil.ToFloat64(m.tasks.WithLabelValues("failed")), 1},
		{"tasks cancelled", testutil.ToFloat64(m.tasks.WithLabelValues("cancelled")), 1},
		{"failures exit", testutil.ToFloat64(m.failures.WithLabelValues("exit")), 1},
		{"failures cancelled", testutil.ToFloat64(m.failures.WithLabelValues("cancelled")), 1},
		{"decisions", testutil.ToFloat64(m.decisions), 2},
		{"blocks submitted", testutil.ToFloat64(m.blocksSubmit), 2},
		{"blocks cancelled", testutil.ToFloat64(m.blocksCancel), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	want := `
# HELP htex_slots Slots of the registered pools, busy or idle.
# TYPE htex_slots gauge
htex_slots{state="busy"} 3
htex_slots{state="idle"} 5
# HELP htex_tasks_queued Tasks waiting for a slot (queue depth).
# TYPE htex_tasks_queued gauge
htex_tasks_queued 7
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "htex_slots", "htex_tasks_queued"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.result); n != 1 {
		t.Errorf("result histogram: %d series", n)
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if !strings.HasPrefix(mf.GetName(), "htex_") {
			t.Errorf("metric %s lacks the htex_ prefix", mf.GetName())
		}
		if mf.GetName() == "htex_task_result_seconds" && mf.GetMetric()[0].GetHistogram().GetSampleCount() != 3 {
			t.Errorf("result latency: %d samples, want 3 (the task of unknown submission is not observed)", mf.GetMetric()[0].GetHistogram().GetSampleCount())
		}
		if mf.GetName() == "htex_blocks" && len(mf.GetMetric()) != len(BlockStates)+1 {
			t.Errorf("htex_blocks: %d series, want every known state and the odd one", len(mf.GetMetric()))
		}
	}
	for _, n := range []string{"htex_process_cpu_seconds_total", "htex_go_goroutines", "htex_blocks", "htex_pools",
		"htex_tasks_running", "htex_journal_commit_seconds", "htex_journal_batch_rows", "htex_task_dispatch_seconds"} {
		if !names[n] {
			t.Errorf("no metric %s", n)
		}
	}
}

func TestNilMetricsIgnoresCalls(t *testing.T) {
	var m *Metrics
	m.TaskFinished("succeeded", "", time.Second)
	m.TaskDispatched(time.Second)
	m.JournalCommitted(time.Second, 1)
	m.ScalerDecided(1, 1)
	m.SetSource(nil)
}

func TestServe(t *testing.T) {
	m := New()
	m.TaskFinished("succeeded", "", time.Millisecond)
	s, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `htex_tasks_total{state="succeeded"} 1`) {
		t.Errorf("scrape lacks the counter:\n%s", body)
	}
}
