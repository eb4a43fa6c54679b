package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// step is one stage of a job's scripted life, from PBS_EMULATOR_STATES
// (read by qsub, kept in the job record, played by the wrapper). The letters
// are PBS's job states (OpenPBS src/include/job.h JOB_STATE_LTR_*, and the
// qstat(1B) man page):
//
//	T  being moved to a new location (transit)     before the run, for its duration
//	W  waiting for its start time                  before the run, for its duration
//	Q  queued                                      before the run, for its duration (default: the start delay)
//	H  held by the system, as a hook or the server holds a job that failed to
//	   start: Hold_Types s, comment "job held, too many failed attempts to run";
//	   until qrls
//	M  moved to another server: a history record in M (substate 94); never runs here
//	R  running (the script starts at the first R or B; a duration ends this
//	   stage, none lets it run to its end)
//	B  as R, shown as B (what the parent of a running array job shows)
//	S  suspended: the script's process group is stopped for the duration
//	E  exiting: after the script ended, for the duration, before F
//	gone  the record disappears: qstat answers "Unknown Job Id" as for a job
//	   a routing queue dropped, or one whose history is not kept
type step struct {
	State string        `json:"state"`
	For   time.Duration `json:"for,omitempty"`
}

// goneStep is the pseudo-state of a job that vanishes.
const goneStep = "gone"

// Substates shown for the scripted states (OpenPBS src/include/job.h).
const (
	substateTransit   = 0  // JOB_SUBSTATE_TRANSIN
	substateWaiting   = 30 // JOB_SUBSTATE_WAITING
	substateSuspended = 43 // JOB_SUBSTATE_SUSPEND
	substateMoved     = 94 // JOB_SUBSTATE_MOVED
	substateBegun     = 70 // JOB_SUBSTATE_BEGUN
)

// heldByHookComment is the comment ALCF documents for a job the system
// held ("Common PBS Issues & Troubleshooting",
// https://docs.alcf.anl.gov/running-jobs/known-issues/).
const heldByHookComment = "job held, too many failed attempts to run"

// parseSteps reads PBS_EMULATOR_STATES: comma-separated STATE[:duration].
// It checks the order (pre-run stages, then the run, then E, with M or gone
// only last) so that a test's mistake is an error at qsub, not a hang.
func parseSteps(spec string) ([]step, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	var steps []step
	phase := 0 // 0 before the run, 1 running, 2 exiting, 3 ended
	for _, item := range strings.Split(spec, ",") {
		name, dur, hasDur := strings.Cut(strings.TrimSpace(item), ":")
		s := step{State: name}
		if hasDur {
			d, err := parseDuration(dur)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("PBS_EMULATOR_STATES %q: bad duration in %q", spec, item)
			}
			s.For = d
		}
		bad := func(why string) error { return fmt.Errorf("PBS_EMULATOR_STATES %q: %q %s", spec, item, why) }
		if phase == 3 {
			return nil, bad("comes after the job has left (M or gone must be last)")
		}
		switch name {
		case "T", "W":
			if phase != 0 {
				return nil, bad("must come before the run")
			}
			if !hasDur {
				return nil, bad("needs a duration, e.g. " + name + ":1s")
			}
		case "Q":
			if phase != 0 {
				return nil, bad("must come before the run (requeueing is not emulated)")
			}
		case "H", "M":
			if phase != 0 {
				return nil, bad("must come before the run")
			}
			if hasDur {
				return nil, bad("takes no duration")
			}
			if name == "M" {
				phase = 3
			}
		case "R", "B":
			if phase > 1 {
				return nil, bad("comes after E")
			}
			phase = 1
		case "S":
			if phase != 1 {
				return nil, bad("must follow R or B")
			}
			if !hasDur {
				return nil, bad("needs a duration, e.g. S:1s")
			}
		case "E":
			if phase == 2 {
				return nil, bad("is given twice")
			}
			if !hasDur {
				return nil, bad("needs a duration, e.g. E:1s")
			}
			if phase == 0 {
				steps = append(steps, step{State: "R"}) // E implies a run before it
			}
			phase = 2
		case goneStep:
			if hasDur {
				return nil, bad("takes no duration")
			}
			phase = 3
		default:
			return nil, bad("is not one of T W Q H M R B S E gone")
		}
		steps = append(steps, s)
	}
	return steps, nil
}

func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Second)), err
}

// lifePlan splits a job's steps into what the wrapper does before the
// run, during it and after it. With no steps the job is queued for its
// start delay and then runs, as before the steps existed.
type lifePlan struct {
	before  []step // T W Q H, and possibly a final M or gone
	running []step // R B S; empty when the job never runs
	exiting time.Duration
	gone    bool // the record vanishes after the run
}

func planOf(j *Job) lifePlan {
	steps := j.Steps
	if len(steps) == 0 {
		steps = []step{{State: "Q", For: j.StartDelay}}
	}
	var p lifePlan
	i := 0
	for ; i < len(steps) && !isRun(steps[i].State) && steps[i].State != "E"; i++ {
		if st := steps[i]; st.State == "Q" && st.For == 0 {
			steps[i].For = j.StartDelay
		}
		p.before = append(p.before, steps[i])
	}
	if n := len(p.before); n > 0 && leaves(p.before[n-1].State) {
		return p
	}
	for ; i < len(steps) && (isRun(steps[i].State) || steps[i].State == "S"); i++ {
		p.running = append(p.running, steps[i])
	}
	if len(p.running) == 0 {
		p.running = []step{{State: "R"}}
	}
	for ; i < len(steps); i++ {
		switch steps[i].State {
		case "E":
			p.exiting = steps[i].For
		case goneStep:
			p.gone = true
		}
	}
	return p
}

func isRun(s string) bool { return s == "R" || s == "B" }

// leaves reports whether a pre-run step ends the job here.
func leaves(s string) bool { return s == "M" || s == goneStep }

// showState sets the job's displayed state and substate.
func showState(seq int, state string, substate int) error {
	_, err := updateJob(seq, func(j *Job) error {
		if j.Deleted {
			return errDeleted
		}
		if !j.Hold { // a user hold (qsub -h) shows H until qrls
			j.State, j.Substate = state, substate
		}
		return nil
	})
	return err
}

// playBefore shows the pre-run steps; false when the job was deleted or
// left (M, gone) and must not run.
func playBefore(seq int, steps []step, sigs chan os.Signal) bool {
	for _, st := range steps {
		switch st.State {
		case "T":
			if showState(seq, "T", substateTransit) != nil {
				return false
			}
		case "W":
			if showState(seq, "W", substateWaiting) != nil {
				return false
			}
		case "Q":
			if showState(seq, "Q", substateQueued) != nil {
				return false
			}
		case "H":
			_, err := updateJob(seq, func(j *Job) error {
				j.Hold, j.HoldType = true, "s"
				j.State, j.Substate, j.Comment = "H", substateHeld, heldByHookComment
				return nil
			})
			if err != nil {
				return false
			}
		case "M":
			moveAway(seq)
			return false
		case goneStep:
			vanish(seq)
			return false
		}
		if !waitFor(seq, st.For, sigs) {
			return false
		}
	}
	return true
}

// waitFor waits d, and then while the job is held; false when the job was
// deleted meanwhile.
func waitFor(seq int, d time.Duration, sigs chan os.Signal) bool {
	delay := time.NewTimer(d)
	defer delay.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	delayed := d <= 0
	for {
		cur, err := loadJobLocked(seq)
		if err != nil || cur.Deleted {
			return false
		}
		if delayed && !cur.Hold {
			return true
		}
		select {
		case <-sigs:
		case <-delay.C:
			delayed = true
		case <-tick.C:
		}
	}
}

// moveAway ends the job here as moved to another server (history state M).
func moveAway(seq int) {
	_, _ = updateJob(seq, func(j *Job) error {
		j.State, j.Substate, j.Obittime = "M", substateMoved, time.Now()
		j.Comment = "Job moved to peer server " + serverName + "-peer"
		return nil
	})
}

// vanish removes every trace of the job from the server's view.
func vanish(seq int) {
	_ = withLock(func() error {
		_ = os.Remove(filepath.Join(stateDir(), "jobs", strconv.Itoa(seq)+".SC"))
		return os.Remove(jobPath(seq))
	})
}
