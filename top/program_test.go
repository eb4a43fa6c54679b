package top

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
)

// TestProgram runs the model in bubbletea's own program loop (teatest's
// virtual terminal, 80x24): snapshots arrive as messages, keys are typed,
// c then y runs the cancel command, q ends the program.
func TestProgram(t *testing.T) {
	var cancelled atomic.Uint64
	m := New(Options{Cancel: func(id uint64) tea.Cmd {
		return func() tea.Msg {
			cancelled.Store(id)
			return CancelledMsg{JobID: id, Message: fmt.Sprintf("job %d: 58 unfinished tasks cancelled", id)}
		}
	}})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	for _, s := range loadStream(t) {
		tm.Send(SnapshotMsg(s))
	}
	waitFor := func(what string) {
		t.Helper()
		teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(what)) },
			teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	}
	waitFor("342/400")
	tm.Type("c")
	waitFor("cancel job 2? its unfinished tasks are killed. y/n")
	tm.Type("y")
	waitFor("job 2: 58 unfinished tasks cancelled")
	if got := cancelled.Load(); got != 2 {
		t.Errorf("cancel ran for job %d, want 2", got)
	}
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	final := tm.FinalModel(t).(*Model)
	if final.width != 80 || final.height != 24 {
		t.Errorf("final size %dx%d, want the terminal's 80x24", final.width, final.height)
	}
}
