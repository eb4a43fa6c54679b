package top

import (
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// SnapshotMsg delivers a poll of the daemon to the model.
type SnapshotMsg Snapshot

// CancelledMsg is the daemon's answer to a cancel the model asked for.
type CancelledMsg struct {
	JobID   uint64
	Message string
	Err     error
}

// Options configure a model.
type Options struct {
	// Cancel returns the command that cancels a job (it runs outside the
	// model and answers with a CancelledMsg); nil makes c do nothing.
	Cancel func(jobID uint64) tea.Cmd
	// Colour enables colour; off when NO_COLOR is set or the output is not
	// a terminal (the driver decides).
	Colour bool
	// Width and Height are the screen size until the terminal reports it.
	Width, Height int
}

// historyLen is how many samples of the completion rate are kept: five
// minutes at one snapshot a second.
const historyLen = 300

// maxFailures is how many of the last failures are kept.
const maxFailures = 50

type sample struct {
	at   time.Time
	done int64
}

// Model is the state of the screen. Drive it with Update, draw it with View.
type Model struct {
	opt          Options
	width        int
	height       int
	last         *Snapshot // last snapshot with a status
	err          string    // the last poll's error, if it failed
	history      []sample  // overall finished tasks, one per snapshot
	jobHist      map[uint64][]sample
	failures     []Failure
	seenFailure  map[uint64]bool
	selected     uint64 // job id; 0 = the newest
	confirm      uint64 // job id awaiting y/n, 0 = none
	failuresOnly bool
	notice       string
	styles       styles
}

// New returns a model with no snapshot yet.
func New(opt Options) *Model {
	if opt.Width <= 0 {
		opt.Width = 80
	}
	if opt.Height <= 0 {
		opt.Height = 24
	}
	r := lipgloss.NewRenderer(nil)
	return &Model{opt: opt, width: opt.Width, height: opt.Height, jobHist: map[uint64][]sample{},
		seenFailure: map[uint64]bool{}, styles: newStyles(r, opt.Colour)}
}

// Init starts nothing: the driver sends snapshots.
func (m *Model) Init() tea.Cmd { return nil }

// Update applies one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case SnapshotMsg:
		m.apply(Snapshot(msg))
	case CancelledMsg:
		if msg.Err != nil {
			m.notice = fmt.Sprintf("cancel job %d failed: %v", msg.JobID, msg.Err)
		} else {
			m.notice = msg.Message
		}
	case tea.KeyMsg:
		return m, m.key(msg.String())
	}
	return m, nil
}

func (m *Model) apply(s Snapshot) {
	if s.Err != "" {
		m.err = s.Err
		return
	}
	m.err = ""
	if s.Status != nil {
		m.history = appendSample(m.history, sample{s.At, s.Status.Succeeded + s.Status.Failed})
	}
	for _, j := range s.Jobs {
		m.jobHist[j.ID] = appendSample(m.jobHist[j.ID], sample{s.At, j.Done()})
	}
	for _, f := range s.Failures {
		if m.seenFailure[f.TaskID] {
			continue
		}
		m.seenFailure[f.TaskID] = true
		m.failures = append(m.failures, f)
	}
	if len(m.failures) > maxFailures {
		m.failures = append([]Failure(nil), m.failures[len(m.failures)-maxFailures:]...)
	}
	m.last = &s
	if m.selected != 0 && m.jobIndex(m.selected) < 0 {
		m.selected = 0
	}
}

func appendSample(h []sample, s sample) []sample {
	h = append(h, s)
	if len(h) > historyLen {
		h = append([]sample(nil), h[len(h)-historyLen:]...)
	}
	return h
}

// key handles one key press.
func (m *Model) key(k string) tea.Cmd {
	if m.confirm != 0 {
		id := m.confirm
		m.confirm = 0
		if k == "y" || k == "Y" {
			m.notice = fmt.Sprintf("cancelling job %d ...", id)
			if m.opt.Cancel != nil {
				return m.opt.Cancel(id)
			}
			return nil
		}
		m.notice = fmt.Sprintf("job %d not cancelled", id)
		return nil
	}
	switch k {
	case "q", "ctrl+c":
		return tea.Quit
	case "j", "down":
		m.move(+1)
	case "k", "up":
		m.move(-1)
	case "f":
		m.failuresOnly = !m.failuresOnly
	case "c":
		if id := m.selectedJob(); id != 0 {
			m.confirm = id
			m.notice = ""
		} else {
			m.notice = "no job to cancel"
		}
	}
	return nil
}

// jobs are the jobs on screen, newest first.
func (m *Model) jobs() []Job {
	if m.last == nil {
		return nil
	}
	var out []Job
	for _, j := range m.last.Jobs {
		if m.failuresOnly && j.Failed == 0 {
			continue
		}
		out = append(out, j)
	}
	return out
}

func (m *Model) jobIndex(id uint64) int {
	for i, j := range m.jobs() {
		if j.ID == id {
			return i
		}
	}
	return -1
}

// selectedJob is the id of the selected job: the newest when none was chosen.
func (m *Model) selectedJob() uint64 {
	js := m.jobs()
	if len(js) == 0 {
		return 0
	}
	if i := m.jobIndex(m.selected); i >= 0 {
		return js[i].ID
	}
	return js[0].ID
}

func (m *Model) move(d int) {
	js := m.jobs()
	if len(js) == 0 {
		return
	}
	i := max(m.jobIndex(m.selectedJob()), 0) + d
	i = min(max(i, 0), len(js)-1)
	m.selected = js[i].ID
}

// rate is the completions per second over the last window of h.
func rate(h []sample, window time.Duration) float64 {
	if len(h) < 2 {
		return 0
	}
	last := h[len(h)-1]
	first := h[0]
	for i := len(h) - 2; i >= 0; i-- {
		first = h[i]
		if last.at.Sub(h[i].at) >= window {
			break
		}
	}
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(last.done-first.done) / dt
}

// rates is the completions per second between consecutive samples.
func rates(h []sample) []float64 {
	var out []float64
	for i := 1; i < len(h); i++ {
		dt := h[i].at.Sub(h[i-1].at).Seconds()
		r := 0.0
		if dt > 0 {
			r = float64(h[i].done-h[i-1].done) / dt
		}
		out = append(out, r)
	}
	return out
}
