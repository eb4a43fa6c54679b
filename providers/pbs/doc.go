// Package pbs is the provider for PBS Professional and OpenPBS (Polaris,
// Aurora): it submits a rendered block script with qsub, reads the state of
// many blocks with one `qstat -E -f -F json -x` call, and cancels with qdel.
// It renders no script (templates/ does) and decides nothing about scaling.
//
// # Job ids
//
// qsub prints the id on stdout; only the first line that looks like a job id
// ("123.server", "123[].server", "123") is taken, so banners printed by site
// submit filters are ignored. Status matches the keys of qstat's "Jobs" object
// to the ids asked for with or without the server suffix.
//
// # State mapping
//
// job_state (qstat -f):
//
//	Q queued, W waiting for its start time, T in transit  → pending
//	H held, S suspended, U suspended (workstation busy)   → held
//	R running, E exiting, B array job begun               → running
//	F finished, X finished subjob                         → see below
//	M moved to another server, anything else              → unknown
//	not listed by qstat -x at all (vanished)              → unknown
//
// (Letters: OpenPBS src/include/job.h JOB_STATE_LTR_* and qstat(1B).)
// Status.Message says what the letter means and adds the job's comment,
// e.g. "held (job_state H); job held, too many failed attempts to run".
// Unknown is not terminal, but the daemon ends a block that stays unknown
// (vanished or moved) once it is past its first seconds.
//
// The job's comment is the status message: the reason a queued job waits.
// A held job (H), and a queued one whose comment starts "Can Never Run",
// is stuck: it will not start by itself. A job that ran and is queued
// again was requeued (preempted, or its node failed); the daemon tells
// that from the state it saw before.
//
// A finished job (history, seen only with -x) is judged, in this order, on its
// Exit_status and on its substate (91 JOB_SUBSTATE_TERMINATED = deleted with
// qdel, 92 FINISHED, 93 FAILED):
//
//	Exit_status -29 (JOB_EXEC_KILL_WALLTIME)              → timeout
//	substate 91 (qdel'ed, queued or running; a running
//	  job then usually has Exit_status 271 = 256+SIGTERM) → cancelled
//	no substate and comment says "terminated"/"deleted"   → cancelled
//	Exit_status 0                                         → completed
//	Exit_status > 256 (killed by signal Exit_status-256)
//	  with resources_used.walltime ≥ Resource_List.walltime
//	  (older PBS Pro reported walltime kills as 271)      → timeout
//	any other Exit_status (1..255, >256, other negative
//	  JOB_EXEC_* codes such as -27 KILL_MEM)              → failed
//	no Exit_status at all (never ran, not deleted)        → failed
//
// Status.ExitCode is Exit_status whenever qstat gives one; Status.Message is
// the job's comment, plus the JOB_EXEC_* name or signal when there is one.
//
// # What qstat says that is not an error
//
// Ids qstat does not know ("qstat: Unknown Job Id ...", exit 153) or no
// longer shows ("Job has finished, use -x", exit 35) are reported as
// providers.Unknown. Output that is not JSON is an error wrapping ErrBadOutput
// that quotes its first bytes; it is never a panic. Known defects of PBS's
// JSON writer (invalid escapes such as "\;", raw control characters inside
// strings, numbers with leading zeros such as 005, text before the document,
// duplicate keys) are repaired before decoding; valid JSON is never changed.
package pbs
