package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/htex/htex/internal/testenv"
)

// scrape reads /metrics and returns each sample as name{labels} → value,
// labels in the order the text format gives them.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %s\n%s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("scrape %s: %v\n%s", url, err, body)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "htex_") {
			t.Errorf("metric %s lacks the htex_ prefix", name)
		}
		for _, m := range mf.GetMetric() {
			key := name
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

var metricsURL = regexp.MustCompile(`msg="metrics listening" url=(http://\S+/metrics)`)

// TestMetricsScrape scrapes /metrics while a job runs and after: the
// counters move during the run and agree with `status` at its end.
func TestMetricsScrape(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemonEnv(t, localConfig, "HTEX_METRICS=127.0.0.1:0")
	m := metricsURL.FindStringSubmatch(d.Log())
	if m == nil {
		t.Fatalf("no metrics address in the daemon's log:\n%s", d.Log())
	}
	url := m[1]
	// 300 tasks of 20 ms on 2 slots: about 3 s; every 10th exits 3
	job := d.Submit("--array", "1-300", "--", "sh", "-c", "sleep 0.02; [ $(({} % 10)) -ne 0 ] || exit 3")
	var samples []map[string]float64
	d.WaitStatus("the job to finish while scraping", 2*time.Minute, func(st testenv.Status) bool {
		samples = append(samples, scrape(t, url))
		return st.Queued+st.Running == 0 && st.Succeeded+st.Failed == 300
	})
	d.WaitJob(job)
	moved := 0
	for i := 1; i < len(samples); i++ {
		prev, cur := samples[i-1][`htex_tasks_total{state=succeeded}`], samples[i][`htex_tasks_total{state=succeeded}`]
		if cur < prev {
			t.Errorf("htex_tasks_total{state=succeeded} went down: %v then %v", prev, cur)
		}
		if cur > prev {
			moved++
		}
	}
	if moved < 2 {
		t.Errorf("the succeeded counter moved in %d of %d scrapes during the run, want at least 2", moved, len(samples))
	}
	st := d.Status()
	end := scrape(t, url)
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"succeeded = status.succeeded", end[`htex_tasks_total{state=succeeded}`], float64(st.Succeeded)},
		{"failed + cancelled = status.failed", end[`htex_tasks_total{state=failed}`] + end[`htex_tasks_total{state=cancelled}`], float64(st.Failed)},
		{"failed by kind exit", end[`htex_task_failures_total{error_kind=exit}`], 30},
		{"succeeded", end[`htex_tasks_total{state=succeeded}`], 270},
		{"results latency observed once per task", end[`htex_task_result_seconds`], 300},
		{"queue depth = status.queued", end[`htex_tasks_queued`], float64(st.Queued)},
		{"running = status.running", end[`htex_tasks_running`], float64(st.Running)},
		{"pools = status", end[`htex_pools`], float64(len(st.Pools))},
		{"running blocks = status", end[`htex_blocks{state=running}`], float64(countBlocks(st, "running"))},
		{"idle slots = status", end[`htex_slots{state=idle}`], float64(idleSlots(st))},
	} {
		if c.got != c.want {
			t.Errorf("%s: metric %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, name := range []string{"htex_task_dispatch_seconds", "htex_journal_commit_seconds", "htex_journal_batch_rows", "htex_scaler_decisions_total", "htex_process_resident_memory_bytes"} {
		if end[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, end[name])
		}
	}
	if end["htex_task_dispatch_seconds"] < 300 {
		t.Errorf("dispatch latency observed %v times, want at least once per task (300)", end["htex_task_dispatch_seconds"])
	}
}

func countBlocks(st testenv.Status, state string) int {
	n := 0
	for _, b := range st.Blocks {
		if b.State == state {
			n++
		}
	}
	return n
}

func idleSlots(st testenv.Status) int {
	n := 0
	for _, p := range st.Pools {
		n += p.Slots - p.Busy
	}
	return n
}
