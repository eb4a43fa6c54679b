package daemon

import (
	"testing"

	"github.com/htex/htex/providers"
)

func TestNoteWaitReason(t *testing.T) {
	const never = "Can Never Run: Not enough total nodes available"
	tests := []struct {
		name        string
		b           block
		st          providers.Status
		wantMsg     string
		wantChanged bool
	}{
		{"pending with a comment", block{}, providers.Status{State: providers.Pending, Message: never}, never, true},
		{"same comment again", block{message: never, waitReason: true}, providers.Status{State: providers.Pending, Message: never}, never, false},
		{"held, new reason", block{message: never, waitReason: true}, providers.Status{State: providers.Held, Message: "held (job_state H)"}, "held (job_state H)", true},
		{"runs: the reason goes", block{message: never, waitReason: true}, providers.Status{State: providers.Running, Message: "Job run at ..."}, "", true},
		{"runs, no reason before", block{}, providers.Status{State: providers.Running, Message: "Job run at ..."}, "", false},
		{"cancel asked: keep cancelled: why", block{message: "cancelled: idle", cancelAsked: true}, providers.Status{State: providers.Pending, Message: never}, "cancelled: idle", false},
		{"ended: left to the end-of-block logic", block{message: "x"}, providers.Status{State: providers.Failed, Message: "Exit_status 1"}, "x", false},
		{"ended after waiting: the stale reason goes", block{message: never, waitReason: true}, providers.Status{State: providers.Cancelled}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			changed := b.noteWaitReason(tt.st)
			if b.message != tt.wantMsg || changed != tt.wantChanged {
				t.Errorf("message %q changed %v; want %q, %v", b.message, changed, tt.wantMsg, tt.wantChanged)
			}
		})
	}
}
