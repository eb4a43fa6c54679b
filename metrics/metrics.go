// Package metrics is the daemon's Prometheus instrumentation: every metric
// htex exports, each named htex_*, and the HTTP handler of `serve
// --metrics`. Two kinds of input feed it: events the interchange and the
// scaler report as they happen (a task dispatched or finished, a journal
// commit, a scaler decision), through the small Observer methods, and a
// snapshot read at scrape time (queue depth, pools, slots, blocks), taken
// from what the daemon already keeps for `htexctl status`. It never
// touches sockets or the journal, and the observers only update atomics.
// docs/metrics.md lists every metric.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Snapshot is the state read at scrape time.
type Snapshot struct {
	Queued, Running int
	Pools           int
	Slots, Busy     int
	Blocks          map[string]int // blocks by state
}

// TaskStates are the final states of a task, each one series of
// htex_tasks_total (a task is counted once, when its result is committed).
var TaskStates = []string{"succeeded", "failed", "cancelled"}

// BlockStates are the block states always exported (0 when none), so a
// dashboard has a series to draw; others appear when a block has them.
var BlockStates = []string{"pending", "running", "completed", "failed", "cancelled", "timeout", "held", "unknown", "ended"}

// Metrics holds the registry and the metrics. Its methods are safe for
// concurrent use; a nil *Metrics ignores every call.
type Metrics struct {
	reg *prometheus.Registry

	tasks        *prometheus.CounterVec
	byState      map[string]prometheus.Counter // the series of htex_tasks_total, looked up once
	failures     *prometheus.CounterVec
	dispatch     prometheus.Histogram
	result       prometheus.Histogram
	commit       prometheus.Histogram
	batchRows    prometheus.Histogram
	decisions    prometheus.Counter
	blocksSubmit prometheus.Counter
	blocksCancel prometheus.Counter
	mu           sync.Mutex
	source       func() Snapshot
	queued       *prometheus.Desc
	running      *prometheus.Desc
	pools        *prometheus.Desc
	slots        *prometheus.Desc
	blocks       *prometheus.Desc
}

// latencyBuckets span a noop dispatch (tens of µs) to hours-long tasks.
var latencyBuckets = prometheus.ExponentialBucketsRange(50e-6, 4*3600, 24)

// New builds the registry with every htex_ metric, the Go runtime's and
// the process's (as htex_go_* and htex_process_*).
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.tasks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "htex_tasks_total",
		Help: "Tasks finished since the daemon started, by final state (succeeded, failed, cancelled); counted once, when the result is committed to the journal."}, []string{"state"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "htex_task_failures_total",
		Help: "Tasks that did not succeed since the daemon started, by error kind (exit, signal, timeout, spawn, manager_lost, cancelled)."}, []string{"error_kind"})
	m.dispatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "htex_task_dispatch_seconds",
		Help: "Time from a task's submission to its dispatch to a pool, per attempt.", Buckets: latencyBuckets})
	m.result = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "htex_task_result_seconds",
		Help: "Time from a task's submission to its result committed to the journal.", Buckets: latencyBuckets})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "htex_journal_commit_seconds",
		Help: "Time to commit one journal batch to SQLite.", Buckets: prometheus.ExponentialBucketsRange(10e-6, 10, 20)})
	m.batchRows = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "htex_journal_batch_rows",
		Help: "Rows (jobs, tasks, results, attempts, blocks, pools, events) in one journal batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)})
	m.decisions = prometheus.NewCounter(prometheus.CounterOpts{Name: "htex_scaler_decisions_total", Help: "Scaling decisions made."})
	m.blocksSubmit = prometheus.NewCounter(prometheus.CounterOpts{Name: "htex_scaler_blocks_submitted_total", Help: "Blocks the scaler decided to submit."})
	m.blocksCancel = prometheus.NewCounter(prometheus.CounterOpts{Name: "htex_scaler_blocks_cancelled_total", Help: "Idle blocks the scaler decided to cancel."})
	m.queued = prometheus.NewDesc("htex_tasks_queued", "Tasks waiting for a slot (queue depth).", nil, nil)
	m.running = prometheus.NewDesc("htex_tasks_running", "Tasks running on pools.", nil, nil)
	m.pools = prometheus.NewDesc("htex_pools", "Worker pools registered.", nil, nil)
	m.slots = prometheus.NewDesc("htex_slots", "Slots of the registered pools, busy or idle.", []string{"state"}, nil)
	m.blocks = prometheus.NewDesc("htex_blocks", "Blocks (batch jobs) by state.", []string{"state"}, nil)
	m.byState = map[string]prometheus.Counter{}
	for _, s := range TaskStates {
		m.byState[s] = m.tasks.WithLabelValues(s)
	}
	m.reg.MustRegister(m.tasks, m.failures, m.dispatch, m.result, m.commit, m.batchRows,
		m.decisions, m.blocksSubmit, m.blocksCancel, snapshotCollector{m})
	prefixed := prometheus.WrapRegistererWithPrefix("htex_", m.reg)
	prefixed.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry behind Handler (for tests that gather).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// SetSource sets the function read at every scrape for the gauges.
func (m *Metrics) SetSource(f func() Snapshot) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.source = f
	m.mu.Unlock()
}

// TaskDispatched records one attempt handed to a pool, queued for d since
// the task's submission.
func (m *Metrics) TaskDispatched(d time.Duration) {
	if m == nil {
		return
	}
	m.dispatch.Observe(d.Seconds())
}

// TaskFinished records a task's final result once it is committed:
// state is succeeded, failed or cancelled; errorKind is empty for a
// success; sinceSubmit is 0 when the submission time is not known (a task
// of a previous daemon).
func (m *Metrics) TaskFinished(state, errorKind string, sinceSubmit time.Duration) {
	if m == nil {
		return
	}
	if c, ok := m.byState[state]; ok {
		c.Inc()
	} else {
		m.tasks.WithLabelValues(state).Inc()
	}
	if state != "succeeded" {
		if errorKind == "" {
			errorKind = "unknown"
		}
		m.failures.WithLabelValues(errorKind).Inc()
	}
	if sinceSubmit > 0 {
		m.result.Observe(sinceSubmit.Seconds())
	}
}

// JournalCommitted records one journal batch written.
func (m *Metrics) JournalCommitted(took time.Duration, rows int) {
	if m == nil {
		return
	}
	m.commit.Observe(took.Seconds())
	m.batchRows.Observe(float64(rows))
}

// ScalerDecided records one scaling decision and the blocks it submits
// and cancels.
func (m *Metrics) ScalerDecided(submit, cancel int) {
	if m == nil {
		return
	}
	m.decisions.Inc()
	m.blocksSubmit.Add(float64(submit))
	m.blocksCancel.Add(float64(cancel))
}

// snapshotCollector turns the snapshot into gauges at scrape time.
type snapshotCollector struct{ m *Metrics }

func (c snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.m.queued, c.m.running, c.m.pools, c.m.slots, c.m.blocks} {
		ch <- d
	}
}

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	src := c.m.source
	c.m.mu.Unlock()
	if src == nil {
		return
	}
	s := src()
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(c.m.queued, s.Queued)
	gauge(c.m.running, s.Running)
	gauge(c.m.pools, s.Pools)
	gauge(c.m.slots, s.Busy, "busy")
	gauge(c.m.slots, s.Slots-s.Busy, "idle")
	for _, st := range BlockStates {
		gauge(c.m.blocks, s.Blocks[st], st)
	}
	for st, n := range s.Blocks {
		if !isBlockState(st) {
			gauge(c.m.blocks, n, st)
		}
	}
}

func isBlockState(s string) bool {
	for _, x := range BlockStates {
		if x == s {
			return true
		}
	}
	return false
}
