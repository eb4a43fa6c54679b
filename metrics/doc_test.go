package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDocsListEveryMetric keeps docs/metrics.md and the Grafana dashboard
// in step with the registry: every htex_ metric is documented, every
// documented or charted name exists.
func TestDocsListEveryMetric(t *testing.T) {
	m := New()
	m.TaskFinished("failed", "exit", time.Second) // so that the labelled families have a series
	m.SetSource(func() Snapshot { return Snapshot{} })
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, n := range regexp.MustCompile("\\| `(htex_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[n[1]] = true
		if !have[n[1]] {
			t.Errorf("docs/metrics.md lists %s, which the registry lacks", n[1])
		}
	}
	for n := range have {
		if strings.HasPrefix(n, "htex_go_") || strings.HasPrefix(n, "htex_process_") {
			continue // documented as families
		}
		if !documented[n] {
			t.Errorf("metric %s is not in docs/metrics.md", n)
		}
	}
	dash, err := os.ReadFile("../docs/grafana-htex.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range regexp.MustCompile(`htex_[a-z_]+`).FindAllString(string(dash), -1) {
		base := strings.TrimSuffix(n, "_bucket")
		if !have[base] && !have[n] {
			t.Errorf("the dashboard charts %s, which the registry lacks", n)
		}
	}
}
