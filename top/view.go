package top

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/htex/htex/wire"
)

type styles struct {
	title, head, bar, barEmpty, bad, sel, dim lipgloss.Style
}

func newStyles(r *lipgloss.Renderer, colour bool) styles {
	if colour {
		r.SetColorProfile(termenv.ANSI256)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	s := r.NewStyle
	return styles{
		title:    s().Bold(true),
		head:     s().Bold(true).Foreground(lipgloss.Color("12")),
		bar:      s().Foreground(lipgloss.Color("10")),
		barEmpty: s().Foreground(lipgloss.Color("8")),
		bad:      s().Foreground(lipgloss.Color("9")),
		sel:      s().Reverse(true),
		dim:      s().Foreground(lipgloss.Color("8")),
	}
}

// section is a pane's heading and its rows, of which as many are shown as
// the screen has room for.
type section struct {
	head string
	rows []string
	min  int // rows shown before any other section gets a second one
}

// View draws the screen: exactly min(height, lines) lines, none wider than
// the screen.
func (m *Model) View() string {
	w, h := max(m.width, 20), max(m.height, 6)
	top := m.header(w)
	foot := m.footer()
	var secs []section
	if m.failuresOnly {
		secs = []section{m.jobSection(w), m.failureSection()}
	} else {
		secs = []section{m.jobSection(w), m.failureSection(), m.blockSection(), m.poolSection()}
	}
	if m.last != nil && m.last.Status != nil && m.last.Status.Scaler != "" && !m.failuresOnly {
		foot = append([]string{"scaler: " + m.last.Status.Scaler}, foot...)
	}
	room := h - len(top) - len(foot) - len(secs)
	shown := allot(secs, room)
	lines := append([]string(nil), top...)
	for i, s := range secs {
		head := s.head
		if shown[i] < len(s.rows) {
			head += fmt.Sprintf(" (%d of %d shown)", shown[i], len(s.rows))
		}
		lines = append(lines, m.styles.head.Render(head))
		lines = append(lines, s.rows[:shown[i]]...)
	}
	lines = append(lines, foot...)
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "…")
	}
	return strings.Join(lines, "\n")
}

// allot shares room rows among the sections: first each its minimum, then
// one more row to each in turn, in order, until room or rows run out.
func allot(secs []section, room int) []int {
	shown := make([]int, len(secs))
	for i, s := range secs {
		n := min(s.min, len(s.rows), max(room, 0))
		shown[i], room = n, room-n
	}
	for room > 0 {
		gave := false
		for i, s := range secs {
			if room > 0 && shown[i] < len(s.rows) {
				shown[i]++
				room--
				gave = true
			}
		}
		if !gave {
			break
		}
	}
	return shown
}

func (m *Model) header(w int) []string {
	if m.last == nil || m.last.Status == nil {
		l := "htex top: waiting for the daemon's status"
		if m.err != "" {
			l = "htex top: " + m.err
		}
		return []string{m.styles.title.Render(l), "", ""}
	}
	st := m.last.Status
	title := fmt.Sprintf("htex top · %s · %s", st.Label, st.Provider)
	if st.StartedUnixMs > 0 {
		title += " · up " + fmtDur(m.last.At.Sub(time.UnixMilli(st.StartedUnixMs)))
	}
	title += " · " + m.last.At.Format(time.TimeOnly)
	if m.err != "" {
		title += " · " + m.styles.bad.Render("poll failed: "+m.err)
	}
	tasks := fmt.Sprintf("tasks  %d queued · %d running · %d succeeded · %s",
		st.Queued, st.Running, st.Succeeded, m.failed(fmt.Sprintf("%d failed", st.Failed), st.Failed > 0))
	r := rates(m.history)
	label := fmt.Sprintf("done/s  %s now", fmtRate(rate(m.history, 10*time.Second)))
	spark := sparkline(r, w-ansi.StringWidth(label)-2)
	return []string{m.styles.title.Render(title), tasks, label + "  " + m.styles.bar.Render(spark)}
}

func (m *Model) failed(s string, bad bool) string {
	if bad {
		return m.styles.bad.Render(s)
	}
	return s
}

func (m *Model) jobSection(w int) section {
	js := m.jobs()
	s := section{head: "JOBS", min: 3}
	sel := m.selectedJob()
	for _, j := range js {
		line := m.jobLine(j, w)
		if j.ID == sel {
			line = m.styles.sel.Render("> " + line)
		} else {
			line = "  " + line
		}
		s.rows = append(s.rows, line)
	}
	if len(js) == 0 {
		s.rows = []string{"  (no jobs)"}
	}
	return s
}

// jobLine is "id [bar] pct done/total failed rate ETA", the bar as wide as
// the screen allows.
func (m *Model) jobLine(j Job, w int) string {
	pct := 0.0
	if j.Total > 0 {
		pct = float64(j.Done()) / float64(j.Total)
	}
	r := rate(m.jobHist[j.ID], 30*time.Second)
	eta := "ETA -"
	switch {
	case j.Complete:
		eta = "done"
	case r > 0:
		eta = "ETA " + fmtDur(time.Duration(float64(j.Total-j.Done())/r*float64(time.Second)))
	}
	text := fmt.Sprintf("%3.0f%% %d/%d", 100*pct, j.Done(), j.Total)
	tail := fmt.Sprintf("%s/s %s", fmtRate(r), eta)
	if j.Failed > 0 {
		tail = m.styles.bad.Render(fmt.Sprintf("%d failed", j.Failed)) + " " + tail
	}
	id := fmt.Sprintf("job %-4d", j.ID)
	barW := min(w-2-ansi.StringWidth(id)-ansi.StringWidth(text)-ansi.StringWidth(tail)-5, 30)
	if barW < 5 {
		return strings.Join([]string{id, text, tail}, " ")
	}
	fill := int(math.Round(pct * float64(barW)))
	bar := m.styles.bar.Render(strings.Repeat("█", fill)) + m.styles.barEmpty.Render(strings.Repeat("░", barW-fill))
	return strings.Join([]string{id, "[" + bar + "]", text, tail}, " ")
}

func (m *Model) blockSection() section {
	s := section{head: "BLOCKS", min: 1}
	if m.last == nil || m.last.Status == nil {
		return s
	}
	bs := append([]*wire.BlockStatus(nil), m.last.Status.Blocks...)
	counts := map[string]int{}
	for _, b := range bs {
		counts[b.State]++
	}
	states := make([]string, 0, len(counts))
	for k := range counts {
		states = append(states, fmt.Sprintf("%d %s", counts[k], k))
	}
	sort.Strings(states)
	if len(states) > 0 {
		s.head += ": " + strings.Join(states, ", ")
	}
	for _, b := range bs {
		line := fmt.Sprintf("  %-4d %-9s %d node(s)", b.Id, b.State, b.Nodes)
		if b.Pools > 0 {
			line += fmt.Sprintf(", %d pool(s), %d/%d slots busy", b.Pools, b.Busy, b.Slots)
		}
		if b.Message != "" {
			line += "  " + b.Message
		}
		s.rows = append(s.rows, line)
	}
	return s
}

func (m *Model) poolSection() section {
	s := section{head: "POOLS", min: 1}
	if m.last == nil || m.last.Status == nil {
		return s
	}
	slots, busy := 0, 0
	for _, p := range m.last.Status.Pools {
		slots += int(p.Slots)
		busy += int(p.Busy)
	}
	s.head += fmt.Sprintf(": %d, slots %d busy / %d idle", len(m.last.Status.Pools), busy, slots-busy)
	for _, p := range m.last.Status.Pools {
		line := fmt.Sprintf("  %-20s block %-4d %d busy / %d idle", p.Node, p.BlockId, p.Busy, p.Slots-p.Busy)
		if p.Draining {
			line += "  draining"
		}
		s.rows = append(s.rows, line)
	}
	return s
}

func (m *Model) failureSection() section {
	s := section{head: "LAST FAILURES", min: 2}
	for i := len(m.failures) - 1; i >= 0; i-- {
		f := m.failures[i]
		kind := f.Kind
		if kind == "exit" {
			kind = fmt.Sprintf("exit %d", f.ExitCode)
		}
		s.rows = append(s.rows, fmt.Sprintf("  task %d (job %d) %s: %s", f.TaskID, f.JobID, m.styles.bad.Render(kind), f.FirstLine))
	}
	return s
}

func (m *Model) footer() []string {
	switch {
	case m.confirm != 0:
		return []string{m.styles.bad.Render(fmt.Sprintf("cancel job %d? its unfinished tasks are killed. y/n", m.confirm))}
	case m.notice != "":
		return []string{m.notice}
	}
	f := "q quit  j/k select  c cancel job  f failures only"
	if m.failuresOnly {
		f = "q quit  j/k select  c cancel job  f show all"
	}
	return []string{m.styles.dim.Render(f)}
}

// sparkline draws the last width values, scaled to the largest.
func sparkline(vals []float64, width int) string {
	if width <= 0 {
		return ""
	}
	if len(vals) > width {
		vals = vals[len(vals)-width:]
	}
	top := 0.0
	for _, v := range vals {
		top = max(top, v)
	}
	const ticks = "▁▂▃▄▅▆▇█"
	rs := []rune(ticks)
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if top > 0 {
			i = int(math.Round(v / top * float64(len(rs)-1)))
		}
		b.WriteRune(rs[i])
	}
	return b.String()
}

func fmtRate(r float64) string {
	switch {
	case r >= 1000:
		return fmt.Sprintf("%.1fk", r/1000)
	case r >= 10:
		return fmt.Sprintf("%.0f", r)
	default:
		return fmt.Sprintf("%.1f", r)
	}
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, mnt, sec := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, mnt)
	case mnt > 0:
		return fmt.Sprintf("%dm%02ds", mnt, sec)
	default:
		return fmt.Sprintf("%ds", sec)
	}
}
