package worker

import (
	"testing"

	"github.com/htex/htex/wire"
)

func TestFinishedWakesOnlyWhenNeeded(t *testing.T) {
	f := &finished{slots: 2}
	f.started(4) // two running, two queued
	if !f.post(&wire.Result{TaskId: 1}) {
		t.Error("post with the loop not holding results did not ask for a wake")
	}
	got, fed := f.take(nil)
	if len(got) != 1 || !fed {
		t.Fatalf("take = %d results, fed %v; want 1, true", len(got), fed)
	}
	f.arm()
	if f.post(&wire.Result{TaskId: 2}) {
		t.Error("post while the loop holds results and slots have work asked for a wake")
	}
	if f.post(&wire.Result{TaskId: 3}) == false {
		t.Error("post that leaves a slot without work did not ask for a wake")
	}
	if !f.disarm() {
		t.Error("disarm did not report results posted while armed")
	}
	got, fed = f.take(got[:0])
	if len(got) != 2 || fed {
		t.Errorf("take = %d results, fed %v; want 2, false", len(got), fed)
	}
	if f.disarm() {
		t.Error("disarm reported results after all were taken")
	}
}
