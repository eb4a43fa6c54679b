package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/htex/htex/queues"
)

// Exit codes of qsub refusals: the PBS error number modulo 256, as qsub
// exits with pbs_errno (OpenPBS src/cmds/qsub.c, do_submit; numbers from
// src/include/pbs_error.h).
const (
	exitHookReject  = 32  // PBSE_HOOKERROR 15136: a queuejob hook rejected the job
	exitUnknownQ    = 170 // PBSE_UNKQUE 15018
	exitQueueLimit  = 188 // PBSE_EXCQRESC 15036
	exitRouteReject = 191 // PBSE_ROUTEREJ 15039
)

// The messages ALCF documents for what its submit hooks and queues refuse
// ("Running Jobs", https://docs.alcf.anl.gov/running-jobs/#qsub, and
// "Common PBS Issues", https://docs.alcf.anl.gov/running-jobs/known-issues/);
// the last two are also OpenPBS's msg_excqresc and msg_routebad
// (src/lib/Liblog/pbs_messages.c).
const (
	msgNoAccount     = "Account_Name is required to be set."
	msgNoFilesystems = "Resource: filesystems is required to be set."
	msgQueueLimit    = "Job violates queue and/or server resource limits"
	msgRouteReject   = "Job rejected by all possible destinations"
)

// refusal is a qsub error: its message (without "qsub: ") and exit code.
type refusal struct {
	msg  string
	code int
}

func (r *refusal) Error() string { return r.msg }

// strictCheck applies PBS_EMULATOR_STRICT (a machine of package queues:
// "polaris" or "aurora") to a job about to be queued: it returns a
// *refusal for what that facility refuses at qsub, and the steps the job
// takes when the facility accepts it but drops it later (the routing queue
// prod accepts a job none of its destinations takes, and it disappears:
// "Job missing from queue", https://docs.alcf.anl.gov/running-jobs/#troubleshooting-common-errors).
// When routeAtSubmit is set the routing happens before qsub returns and
// qsub says "Job rejected by all possible destinations" instead (the other
// outcome the same page documents).
func strictCheck(mode string, routeAtSubmit bool, j *Job) ([]step, error) {
	if mode == "" {
		return nil, nil
	}
	m, ok := queues.Lookup(mode)
	if !ok {
		return nil, fmt.Errorf("PBS_EMULATOR_STRICT %q: want one of %s", mode, strings.Join(queues.Names(), ", "))
	}
	if j.Account == "" {
		return nil, &refusal{msgNoAccount, exitHookReject}
	}
	if j.Resources["filesystems"] == "" {
		return nil, &refusal{msgNoFilesystems, exitHookReject}
	}
	q, ok := m.Queue(j.Queue)
	if !ok {
		return nil, &refusal{"Unknown queue", exitUnknownQ}
	}
	walltime := time.Duration(j.Walltime) * time.Second
	err := m.Check(j.Queue, j.NodeCount, walltime)
	switch {
	case err == nil:
		return nil, nil
	case !errors.Is(err, queues.ErrOutOfRange):
		return nil, err
	case !q.Routing() || !q.Admits(j.NodeCount, walltime):
		return nil, &refusal{msgQueueLimit, exitQueueLimit}
	case routeAtSubmit:
		return nil, &refusal{msgRouteReject, exitRouteReject}
	default:
		return []step{{State: goneStep}}, nil // accepted, then never routed
	}
}
