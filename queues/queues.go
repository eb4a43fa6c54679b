// Package queues holds the batch queues of the machines htex ships site
// files for whose queues take only some node counts (ALCF Polaris and
// Aurora), with the page each limit comes from, and checks a block's node
// count and walltime against them. It is pure data and pure functions:
// `htexctl config check` warns with it and the PBS emulator's strict mode
// rejects with it; it reads no file and runs nothing.
//
// The tables are copies of the facilities' pages on the date in Read: they
// go stale. A queue that is not in a table is not judged (it may be a
// reservation's queue or a new one).
package queues

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Queue is one queue's limits. MaxNodes and MaxWalltime of 0 mean no
// limit. A routing queue (Routes not empty) accepts a job only when one of
// its destinations would.
type Queue struct {
	Name                     string
	MinNodes, MaxNodes       int
	MinWalltime, MaxWalltime time.Duration
	Routes                   []Queue
	// ByRequest marks queues open only to projects that asked for them.
	ByRequest bool
}

// Machine is a facility machine and its queues.
type Machine struct {
	Name   string // as in its site file's label: "polaris", "aurora"
	Source string // the page the table was copied from
	Read   string // the date it was read (YYYY-MM-DD)
	Queues []Queue
}

// ErrOutOfRange is wrapped by the error Check returns when a block does not
// fit its queue.
var ErrOutOfRange = errors.New("outside the queue's limits")

const (
	minute = time.Minute
	hour   = time.Hour
)

// machines are the tables. Polaris: ALCF "Running Jobs on Polaris",
// section Queues; Aurora: ALCF "Running Jobs on Aurora", section Queues
// (both in github.com/argonne-lcf/user-guides at 7d04a3f, 2026-08-19).
var machines = []Machine{
	{
		Name: "polaris", Source: "https://docs.alcf.anl.gov/polaris/running-jobs/#queues", Read: "2026-11-26",
		Queues: []Queue{
			{Name: "debug", MinNodes: 1, MaxNodes: 2, MinWalltime: 5 * minute, MaxWalltime: hour},
			{Name: "debug-scaling", MinNodes: 1, MaxNodes: 10, MinWalltime: 5 * minute, MaxWalltime: hour},
			{Name: "prod", MinNodes: 10, MaxNodes: 496, MinWalltime: 5 * minute, MaxWalltime: 24 * hour, Routes: []Queue{
				{Name: "small", MinNodes: 10, MaxNodes: 24, MinWalltime: 5 * minute, MaxWalltime: 3 * hour},
				{Name: "medium", MinNodes: 25, MaxNodes: 99, MinWalltime: 5 * minute, MaxWalltime: 6 * hour},
				{Name: "large", MinNodes: 100, MaxNodes: 496, MinWalltime: 5 * minute, MaxWalltime: 24 * hour},
			}},
			{Name: "preemptable", MinNodes: 1, MaxNodes: 10, MinWalltime: 5 * minute, MaxWalltime: 72 * hour},
			{Name: "demand", MinNodes: 1, MaxNodes: 56, MinWalltime: 5 * minute, MaxWalltime: hour, ByRequest: true},
			{Name: "capacity", MinNodes: 1, MaxNodes: 4, MinWalltime: 5 * minute, MaxWalltime: 168 * hour},
		},
	},
	{
		Name: "aurora", Source: "https://docs.alcf.anl.gov/aurora/running-jobs-aurora/#queues", Read: "2026-11-26",
		Queues: []Queue{
			{Name: "debug", MinNodes: 1, MaxNodes: 2, MinWalltime: 5 * minute, MaxWalltime: hour},
			{Name: "debug-scaling", MinNodes: 2, MaxNodes: 256, MinWalltime: 5 * minute, MaxWalltime: hour},
			{Name: "prod", MinNodes: 256, MaxNodes: 10624, MinWalltime: 5 * minute, MaxWalltime: 24 * hour, Routes: []Queue{
				{Name: "small", MinNodes: 256, MaxNodes: 1024, MinWalltime: 5 * minute, MaxWalltime: 12 * hour},
				{Name: "medium", MinNodes: 1025, MaxNodes: 1999, MinWalltime: 5 * minute, MaxWalltime: 18 * hour},
				{Name: "large", MinNodes: 2000, MaxNodes: 10624, MinWalltime: 5 * minute, MaxWalltime: 24 * hour},
			}},
			{Name: "capacity", MinNodes: 1, MaxNodes: 16, MinWalltime: 5 * minute, MaxWalltime: 168 * hour},
			{Name: "visualization", MinNodes: 1, MaxNodes: 32, MinWalltime: 5 * minute, MaxWalltime: 8 * hour, ByRequest: true},
		},
	},
}

// Lookup returns the machine of that name (case-insensitive).
func Lookup(name string) (Machine, bool) {
	for _, m := range machines {
		if strings.EqualFold(m.Name, name) {
			return m, true
		}
	}
	return Machine{}, false
}

// Names lists the machines with tables.
func Names() []string {
	out := make([]string, len(machines))
	for i, m := range machines {
		out[i] = m.Name
	}
	return out
}

// Queue returns the queue of that name; false when the table lacks it.
func (m Machine) Queue(name string) (Queue, bool) {
	i := slices.IndexFunc(m.Queues, func(q Queue) bool { return q.Name == name })
	if i < 0 {
		return Queue{}, false
	}
	return m.Queues[i], true
}

// Check reports whether a job of nodes nodes and the given walltime (0 =
// not given, not judged) fits queue. It returns nil when it fits or when
// the table does not know the queue, and otherwise an error wrapping
// ErrOutOfRange that names the queue's limits and the page they come from.
func (m Machine) Check(queue string, nodes int, walltime time.Duration) error {
	q, ok := m.Queue(queue)
	if !ok {
		return nil
	}
	if why := q.misfit(nodes, walltime); why != "" {
		return fmt.Errorf("%s queue %q: %s (%s, read %s): %w", m.Name, q.Name, why, m.Source, m.Read, ErrOutOfRange)
	}
	if len(q.Routes) == 0 {
		return nil
	}
	for _, r := range q.Routes {
		if r.misfit(nodes, walltime) == "" {
			return nil
		}
	}
	return fmt.Errorf("%s queue %q routes %d node(s) for %s to none of %s (%s, read %s): %w",
		m.Name, q.Name, nodes, walltime, describeRoutes(q.Routes), m.Source, m.Read, ErrOutOfRange)
}

// Admits reports whether a job fits the queue's own node and walltime
// limits (a routing queue's destinations are not asked).
func (q Queue) Admits(nodes int, walltime time.Duration) bool { return q.misfit(nodes, walltime) == "" }

// Routing reports whether the queue is a routing queue.
func (q Queue) Routing() bool { return len(q.Routes) > 0 }

// misfit says why a job does not fit q, or "".
func (q Queue) misfit(nodes int, walltime time.Duration) string {
	switch {
	case nodes < q.MinNodes || (q.MaxNodes > 0 && nodes > q.MaxNodes):
		return fmt.Sprintf("takes %s nodes, not %d", q.nodeRange(), nodes)
	case walltime > 0 && walltime < q.MinWalltime:
		return fmt.Sprintf("takes a walltime of at least %s, not %s", q.MinWalltime, walltime)
	case walltime > 0 && q.MaxWalltime > 0 && walltime > q.MaxWalltime:
		return fmt.Sprintf("takes a walltime of at most %s, not %s", q.MaxWalltime, walltime)
	}
	return ""
}

func (q Queue) nodeRange() string {
	if q.MaxNodes == 0 {
		return fmt.Sprintf("%d or more", q.MinNodes)
	}
	return fmt.Sprintf("%d-%d", q.MinNodes, q.MaxNodes)
}

func describeRoutes(rs []Queue) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s (%s nodes, at most %s)", r.Name, r.nodeRange(), r.MaxWalltime)
	}
	return strings.Join(parts, ", ")
}
