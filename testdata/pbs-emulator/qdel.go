package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// qdel marks jobs deleted and signals their wrappers, which end the jobs:
// a queued job ends at once (substate 91, no Exit_status), a running one
// gets SIGTERM, then SIGKILL after the kill delay (-W force: SIGKILL at
// once), and ends in substate 91 with the Exit_status its shell gave
// (271 = 256+SIGTERM, typically).
func qdel(args []string) int {
	force := false
	var ids []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-W" && i+1 < len(args):
			i++
			force = force || args[i] == "force"
		case strings.HasPrefix(a, "-W"):
			force = force || a[2:] == "force"
		case a == "-x":
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "qdel: invalid option -- '%s'\n", strings.TrimPrefix(a, "-"))
			return 2
		default:
			ids = append(ids, a)
		}
	}
	if len(ids) == 0 {
		fmt.Fprintln(os.Stderr, "usage: qdel [-W force|suppress_mail=<N>] [-x] job_identifier...")
		return 2
	}
	rc := 0
	for _, id := range ids {
		code, msg := deleteJob(id, force)
		if msg != "" {
			fmt.Fprintln(os.Stderr, "qdel: "+msg)
		}
		if code != 0 {
			rc = code
		}
	}
	return rc
}

// deleteJob returns qdel's exit code for one id and its message.
func deleteJob(id string, force bool) (int, string) {
	seq, ok := parseID(id)
	if !ok {
		return 153, "Unknown Job Id " + id
	}
	var wrapper int
	var finished bool
	_, err := updateJob(seq, func(j *Job) error {
		if j.history() {
			finished = true
			return nil
		}
		j.Deleted, j.Forced = true, j.Forced || force
		wrapper = j.WrapperPID
		return nil
	})
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 153, "Unknown Job Id " + id // PBSE_UNKJOBID
	case err != nil:
		return 1, err.Error()
	case finished:
		return 35, fmt.Sprintf("Job has finished %d.%s", seq, serverName) // PBSE_HISTJOBID
	}
	if wrapper == 0 {
		return 0, "" // not yet started: the wrapper sees the mark
	}
	if err := syscall.Kill(wrapper, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		// the wrapper is gone without finishing the job: finish it here
		_, _ = updateJob(seq, func(j *Job) error {
			if !j.history() {
				j.State, j.Substate, j.Obittime = "F", substateTerminated, time.Now()
			}
			return nil
		})
	}
	return 0, ""
}

// qrls releases a hold: a user hold (qsub -h) or a system hold (the H
// step of PBS_EMULATOR_STATES; a real server wants an operator for that).
func qrls(args []string) int {
	rc := 0
	for _, id := range args {
		if strings.HasPrefix(id, "-") {
			continue // -h u
		}
		seq, ok := parseID(id)
		if !ok {
			fmt.Fprintf(os.Stderr, "qrls: Unknown Job Id %s\n", id)
			rc = 153
			continue
		}
		_, err := updateJob(seq, func(j *Job) error {
			if j.Hold {
				j.Hold, j.HoldType, j.State, j.Substate = false, "", "Q", substateQueued
			}
			return nil
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "qrls: Unknown Job Id %s\n", id)
			rc = 153
		}
	}
	return rc
}
