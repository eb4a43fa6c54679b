package queues

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	h := time.Hour
	for _, c := range []struct {
		name, machine, queue string
		nodes                int
		walltime             time.Duration
		want                 string // "" = fits; else a piece of the error
	}{
		{"polaris debug 2 nodes", "polaris", "debug", 2, h, ""},
		{"polaris debug 3 nodes", "polaris", "debug", 3, h, `queue "debug": takes 1-2 nodes, not 3`},
		{"polaris debug too long", "polaris", "debug", 1, 2 * h, "at most 1h0m0s, not 2h0m0s"},
		{"polaris debug too short", "polaris", "debug", 1, time.Minute, "at least 5m0s"},
		{"polaris debug no walltime", "polaris", "debug", 1, 0, ""},
		{"polaris debug-scaling 10", "polaris", "debug-scaling", 10, h, ""},
		{"polaris prod 2 nodes", "polaris", "prod", 2, h, `queue "prod": takes 10-496 nodes, not 2`},
		{"polaris prod 10 nodes 3h", "polaris", "prod", 10, 3 * h, ""},
		// 10 nodes for 24 h fit prod's own limits, but no execution queue
		// takes them: small stops at 3 h (the documented vanishing job).
		{"polaris prod 10 nodes 24h", "polaris", "prod", 10, 24 * h, "routes 10 node(s) for 24h0m0s to none of small (10-24 nodes, at most 3h0m0s)"},
		{"polaris prod 100 nodes 24h", "polaris", "prod", 100, 24 * h, ""},
		{"polaris capacity 4", "polaris", "capacity", 4, 100 * h, ""},
		{"polaris capacity 5", "polaris", "capacity", 5, h, "takes 1-4 nodes"},
		{"polaris unknown queue", "polaris", "R12345", 1000, h, ""},
		{"aurora debug 2", "aurora", "debug", 2, h, ""},
		{"aurora debug-scaling 2", "aurora", "debug-scaling", 2, h, ""},
		{"aurora debug-scaling 1", "aurora", "debug-scaling", 1, h, "takes 2-256 nodes, not 1"},
		{"aurora prod 2", "aurora", "prod", 2, h, `aurora queue "prod": takes 256-10624 nodes, not 2`},
		{"aurora prod 256 12h", "aurora", "prod", 256, 12 * h, ""},
		{"aurora prod 256 13h", "aurora", "prod", 256, 13 * h, "to none of"},
		{"aurora capacity 16", "aurora", "capacity", 16, 168 * h, ""},
		{"aurora capacity 17", "aurora", "capacity", 17, h, "takes 1-16 nodes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, ok := Lookup(c.machine)
			if !ok {
				t.Fatalf("no machine %q", c.machine)
			}
			err := m.Check(c.queue, c.nodes, c.walltime)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Check = %v, want it to fit", err)
			case c.want != "" && err == nil:
				t.Errorf("Check = nil, want %q", c.want)
			case c.want != "" && (!strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrOutOfRange)):
				t.Errorf("Check = %v, want ErrOutOfRange and %q", err, c.want)
			case err != nil && !strings.Contains(err.Error(), m.Source):
				t.Errorf("Check = %v: names no source", err)
			}
		})
	}
}

// TestTables checks what every table must hold: a source, sane ranges, and
// routes that lie inside their routing queue.
func TestTables(t *testing.T) {
	if len(Names()) == 0 {
		t.Fatal("no machines")
	}
	for _, name := range Names() {
		m, _ := Lookup(strings.ToUpper(name))
		if !strings.HasPrefix(m.Source, "https://") || len(m.Read) != len("2006-01-02") {
			t.Errorf("%s: source %q read %q", name, m.Source, m.Read)
		}
		for _, q := range m.Queues {
			all := append([]Queue{q}, q.Routes...)
			for _, x := range all {
				if x.MinNodes < 1 || (x.MaxNodes != 0 && x.MaxNodes < x.MinNodes) || x.MaxWalltime < x.MinWalltime {
					t.Errorf("%s %s: bad limits %+v", name, x.Name, x)
				}
			}
			for _, r := range q.Routes {
				if r.MinNodes < q.MinNodes || r.MaxNodes > q.MaxNodes || r.MaxWalltime > q.MaxWalltime {
					t.Errorf("%s %s: route %s outside it", name, q.Name, r.Name)
				}
			}
		}
	}
	if _, ok := Lookup("frontier"); ok {
		t.Error("frontier has no table")
	}
}
