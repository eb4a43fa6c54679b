package testenv

import (
	"encoding/json"
	"time"
)

// Status is `htexctl status --json`, as the tests read it.
type Status struct {
	Label     string   `json:"label"`
	Provider  string   `json:"provider"`
	Encrypted bool     `json:"encrypted"`
	Warning   string   `json:"warning"`
	Jobs      int64    `json:"jobs"`
	Queued    int64    `json:"queued"`
	Running   int64    `json:"running"`
	Succeeded int64    `json:"succeeded"`
	Failed    int64    `json:"failed"`
	Scaler    string   `json:"scaler"`
	Blocks    []Block  `json:"blocks"`
	Pools     []Pool   `json:"pools"`
	Waiting   []string `json:"waiting"` // why queued tasks wait
	Raw       string   `json:"-"`       // the JSON as printed
}

// Block is one block of Status.
type Block struct {
	ID         int64   `json:"id"`
	JobID      string  `json:"job_id"`
	State      string  `json:"state"`
	Nodes      int     `json:"nodes"`
	Pools      int     `json:"pools"`
	Slots      int     `json:"slots"`
	Busy       int     `json:"busy"`
	IdleSince  *string `json:"idle_since"`
	EndTime    *string `json:"end_time"`
	Message    string  `json:"message"`
	StderrPath string  `json:"stderr_path"`
}

// Pool is one pool of Status.
type Pool struct {
	ID       string `json:"id"`
	Node     string `json:"node"`
	BlockID  int64  `json:"block_id"`
	Slots    int    `json:"slots"`
	Busy     int    `json:"busy"`
	Draining bool   `json:"draining"`
}

// Status runs `htexctl status --json` and decodes it.
func (d *Daemon) Status() Status {
	d.t.Helper()
	out := d.MustRun("status", "--json")
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		d.t.Fatalf("status --json: %v\n%s", err, out)
	}
	st.Raw = out
	return st
}

// WaitStatus polls the status until cond holds. limit is a generous
// deadline against a hang, not a measure of speed; past it the test fails
// with the last status and the daemon's log.
func (d *Daemon) WaitStatus(what string, limit time.Duration, cond func(Status) bool) Status {
	d.t.Helper()
	return d.WaitStatusShowing(what, limit, cond, nil)
}

// WaitStatusShowing is WaitStatus whose failure also shows what more
// returns (a scheduler's queue, a block's stderr); more may be nil.
func (d *Daemon) WaitStatusShowing(what string, limit time.Duration, cond func(Status) bool, more func() string) Status {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := d.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			extra := ""
			if more != nil {
				extra = more() + "\n"
			}
			d.t.Fatalf("waited %s for %s; last status:\n%s\n%sdaemon log:\n%s", limit, what, st.Raw, extra, tail(d.Log(), 60))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
