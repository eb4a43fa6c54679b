package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// jobSubcommand is the hidden first argument with which qsub starts the
// wrapper that plays the mom for one job.
const jobSubcommand = "__pbs_emulator_job"

// runJob is the wrapper: it waits out the queue delay and any hold, runs the
// script in a session of its own, enforces walltime, honours qdel and
// writes the final state. It is a session leader (qsub starts it with
// setsid), detached from qsub.
func runJob(args []string) int {
	log.SetPrefix(fmt.Sprintf("[job %v] ", args))
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if len(args) != 1 {
		log.Print("usage: __pbs_emulator_job SEQ")
		return 2
	}
	seq, err := strconv.Atoi(args[0])
	if err != nil {
		log.Print(err)
		return 2
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	j, err := updateJob(seq, func(j *Job) error { j.WrapperPID = os.Getpid(); return nil })
	if err != nil {
		log.Print(err)
		return 1
	}
	plan := planOf(j)
	if !playBefore(seq, plan.before, sigs) {
		if cur, err := loadJobLocked(seq); err == nil && cur.Deleted && !cur.history() {
			finishDeleted(seq)
		}
		return 0
	}
	if err := runScript(seq, sigs, plan); err != nil {
		log.Print(err)
		return 1
	}
	return 0
}

func loadJobLocked(seq int) (*Job, error) {
	var j *Job
	err := withLock(func() error {
		var err error
		j, err = loadJob(seq)
		return err
	})
	return j, err
}

// finishDeleted ends a job deleted before it ran.
func finishDeleted(seq int) {
	_, err := updateJob(seq, func(j *Job) error {
		j.State, j.Substate, j.Obittime = "F", substateTerminated, time.Now()
		return nil
	})
	if err != nil {
		log.Print(err)
	}
}

// nodeNames are the job's emulated hosts: emu-node-<seq>-<i>.
func nodeNames(j *Job) []string {
	nodes := make([]string, j.NodeCount)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("emu-node-%d-%d", j.Seq, i)
	}
	return nodes
}

func execVnode(j *Job) string {
	parts := make([]string, len(j.Nodes))
	for i, n := range j.Nodes {
		parts[i] = fmt.Sprintf("(%s:ncpus=%d)", n, j.NCPUs)
	}
	return strings.Join(parts, "+")
}

func execHost(j *Job) string {
	parts := make([]string, len(j.Nodes))
	for i, n := range j.Nodes {
		parts[i] = fmt.Sprintf("%s/0*%d", n, j.NCPUs)
	}
	return strings.Join(parts, "+")
}

// runScript starts the job, plays its running steps (R, B, S) while it
// runs, and records its end (after E's duration, and then vanishing when
// the plan says gone).
func runScript(seq int, sigs chan os.Signal, plan lifePlan) error {
	now := time.Now()
	first := plan.running[0].State
	j, err := updateJob(seq, func(j *Job) error {
		if j.Deleted {
			return errDeleted
		}
		j.Nodes = nodeNames(j)
		j.State, j.Substate, j.Stime, j.RunCount = first, runSubstate(first), now, j.RunCount+1
		j.Comment = fmt.Sprintf("Job run at %s on %s", now.Format("Mon Jan 02 at 15:04"), execVnode(j))
		return nil
	})
	if errors.Is(err, errDeleted) {
		finishDeleted(seq)
		return nil
	}
	if err != nil {
		return err
	}
	cmd, cleanup, err := prepare(j)
	if err != nil {
		code := -1 // JOB_EXEC_FAIL1
		finish(seq, &code, false, "could not start the job: "+err.Error())
		return err
	}
	defer cleanup()
	if err := cmd.Start(); err != nil {
		code := -2 // JOB_EXEC_FAIL2: files were set up
		finish(seq, &code, false, "could not start the job: "+err.Error())
		return err
	}
	pgid := cmd.Process.Pid
	if _, err := updateJob(seq, func(j *Job) error { j.PGID = pgid; return nil }); err != nil {
		log.Print(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	stop := make(chan struct{})
	played := make(chan struct{})
	go func() { defer close(played); playRunning(seq, pgid, plan.running, stop) }()

	killedForWalltime, waitErr := supervise(j, pgid, done, sigs)
	close(stop)
	<-played
	killSession(pgid, syscall.SIGKILL) // the mom kills what is left of the session
	cleanup()                          // before the job shows as finished
	code := exitStatus(cmd.ProcessState, waitErr)
	if killedForWalltime {
		code = exitKillWalltime
	}
	if plan.exiting > 0 {
		_ = showState(seq, "E", substateExiting)
		time.Sleep(plan.exiting)
	}
	if plan.gone {
		// A server that keeps no job history: the record goes as the job
		// ends, and qstat never shows it finished (F).
		vanish(seq)
		return nil
	}
	finish(seq, &code, killedForWalltime, "")
	return nil
}

// runSubstate is the substate shown with a running letter.
func runSubstate(state string) int {
	if state == "B" {
		return substateBegun
	}
	return substateRunning
}

// supervise waits for the script's end, enforcing walltime and honouring
// qdel; it returns whether walltime killed the job and Wait's error.
func supervise(j *Job, pgid int, done chan error, sigs chan os.Signal) (killedForWalltime bool, waitErr error) {
	var walltime <-chan time.Time
	if j.Walltime > 0 {
		t := time.NewTimer(time.Until(j.Stime.Add(time.Duration(j.Walltime) * time.Second)))
		defer t.Stop()
		walltime = t.C
	}
	var killTimer <-chan time.Time
	terminate := func(force bool) {
		if force {
			killSession(pgid, syscall.SIGKILL)
			return
		}
		killSession(pgid, syscall.SIGTERM)
		killSession(pgid, syscall.SIGCONT) // a suspended job must see it
		if killTimer == nil {
			killTimer = time.After(j.KillDelay)
		}
	}
	for {
		select {
		case <-walltime:
			walltime = nil
			killedForWalltime = true
			used := int(time.Since(j.Stime).Round(time.Second) / time.Second)
			appendJobStderr(j, fmt.Sprintf("=>> PBS: job killed: walltime %d exceeded limit %d\n", used, j.Walltime))
			terminate(false)
		case <-sigs:
			cur, err := loadJobLocked(j.Seq)
			terminate(err == nil && cur.Forced)
		case <-killTimer:
			killSession(pgid, syscall.SIGKILL)
		case err := <-done:
			return killedForWalltime, err
		}
	}
}

// playRunning walks the running steps: R or B for their duration (the last
// one without a duration lasts until the end), S stops the process group
// for its duration and then lets it go on. It returns at the last step or
// when stop is closed, never leaving the group stopped.
func playRunning(seq, pgid int, steps []step, stop chan struct{}) {
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-stop:
			return false
		case <-t.C:
			return true
		}
	}
	for i, st := range steps {
		switch st.State {
		case "R", "B":
			if i > 0 {
				_ = showState(seq, st.State, runSubstate(st.State))
			}
			if st.For == 0 {
				return
			}
		case "S":
			_ = syscall.Kill(-pgid, syscall.SIGSTOP)
			_ = showState(seq, "S", substateSuspended)
		}
		ok := sleep(st.For)
		if st.State == "S" {
			_ = syscall.Kill(-pgid, syscall.SIGCONT)
			if !ok || i == len(steps)-1 {
				_ = showState(seq, "R", substateRunning)
			}
		}
		if !ok {
			return
		}
	}
}

var errDeleted = errors.New("job deleted")

// killSession sends sig to every process of session sid (the job script is
// its leader) as a PBS mom does on qdel, walltime and the job's end
// (OpenPBS src/resmom/linux/mom_mach.c, kill_session called with dir 0 by
// kill_job): down the session's process tree bottom up, children before
// their parents, then any process of the session left, then, for SIGKILL
// or when /proc showed none, the process group. Processes that moved to
// process groups of their own, as worker pools put their tasks, are in the
// session still and get the signal, before the pool that started them.
func killSession(sid int, sig syscall.Signal) {
	procs := sessionProcs(sid)
	done := map[int]bool{}
	var down func(pid int)
	down = func(pid int) {
		for _, c := range procs[pid] {
			down(c)
		}
		if !done[pid] {
			done[pid] = true
			_ = syscall.Kill(pid, sig)
		}
	}
	if _, ok := procs[sid]; ok {
		down(sid)
	}
	for pid := range procs {
		if !done[pid] {
			_ = syscall.Kill(pid, sig)
		}
	}
	if sig == syscall.SIGKILL || len(procs) == 0 {
		_ = syscall.Kill(-sid, sig)
	}
}

// sessionProcs maps each process of session sid, from /proc, to its
// children in the session.
func sessionProcs(sid int) map[int][]int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	procs := map[int][]int{}
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session ...; comm may hold anything,
		// so the fields are counted from the last ')'.
		i := strings.LastIndexByte(string(data), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data)[i+1:])
		if len(f) > 3 && f[3] == strconv.Itoa(sid) {
			ppid, _ := strconv.Atoi(f[1])
			if _, ok := procs[pid]; !ok {
				procs[pid] = nil
			}
			parent[pid] = ppid
		}
	}
	for pid, ppid := range parent {
		if _, ok := procs[ppid]; ok && ppid != pid {
			procs[ppid] = append(procs[ppid], pid)
		}
	}
	return procs
}

// exitStatus is PBS's Exit_status: the shell's exit code, or 256+signal
// when the shell was killed by a signal.
func exitStatus(ps *os.ProcessState, err error) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 256 + int(ws.Signal())
	}
	if code := ps.ExitCode(); code >= 0 {
		return code
	}
	return -1
}

// finish records the job's end. A deleted job ends in substate 91, a
// walltime kill in 93 with Exit_status -29.
func finish(seq int, code *int, walltime bool, why string) {
	_, err := updateJob(seq, func(j *Job) error {
		now := time.Now()
		j.State, j.ExitStatus, j.Obittime = "F", code, now
		outcome := "finished"
		switch {
		case j.Deleted && !walltime:
			j.Substate, outcome = substateTerminated, "terminated"
		case code != nil && *code == 0:
			j.Substate = substateFinished
		default:
			j.Substate, outcome = substateFailed, "failed"
		}
		if !j.Stime.IsZero() {
			j.Comment = fmt.Sprintf("Job run at %s on %s and %s", j.Stime.Format("Mon Jan 02 at 15:04"), execVnode(j), outcome)
		}
		if why != "" {
			j.Comment = why
		}
		return nil
	})
	if err != nil {
		log.Print(err)
	}
}

// prepare builds the job's command: its shell on the script copy, in $HOME,
// with the PBS environment, stdout/stderr to the -o/-e files, PBS_NODEFILE
// and TMPDIR created. cleanup removes the node file and TMPDIR.
func prepare(j *Job) (*exec.Cmd, func(), error) {
	dir := stateDir()
	nodefile := filepath.Join(dir, "aux", j.ID())
	var lines strings.Builder
	for _, n := range j.Nodes {
		for range max(1, j.MPIProcs) {
			lines.WriteString(n + "\n")
		}
	}
	if err := os.WriteFile(nodefile, []byte(lines.String()), 0o644); err != nil {
		return nil, nil, err
	}
	tmpdir := filepath.Join(dir, "tmp", "pbs."+j.ID())
	if err := os.MkdirAll(tmpdir, 0o700); err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		_ = os.Remove(nodefile)
		_ = os.RemoveAll(tmpdir)
	}
	stdout, stderr, err := openStd(j)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	shell := j.Shell
	if shell == "" {
		shell = "/bin/bash"
	}
	cmd := exec.Command(shell, j.Script)
	cmd.Dir = jobHome(j)
	cmd.Env = jobEnv(j, nodefile, tmpdir)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd, func() {
		cleanup()
		stdout.Close()
		if stderr != stdout {
			stderr.Close()
		}
	}, nil
}

// openStd opens the job's stdout and stderr files, honouring -j oe / eo.
func openStd(j *Job) (*os.File, *os.File, error) {
	// O_APPEND: the emulator appends its own lines (the walltime kill) to
	// the same file while the job may still write, as a mom's spool file
	// takes both.
	open := func(p string) (*os.File, error) {
		return os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	}
	switch j.Join {
	case "oe":
		f, err := open(j.OutputPath)
		return f, f, err
	case "eo":
		f, err := open(j.ErrorPath)
		return f, f, err
	}
	o, err := open(j.OutputPath)
	if err != nil {
		return nil, nil, err
	}
	e, err := open(j.ErrorPath)
	if err != nil {
		o.Close()
		return nil, nil, err
	}
	return o, e, nil
}

// appendJobStderr writes a PBS message to the job's stderr file.
func appendJobStderr(j *Job, msg string) {
	p := j.ErrorPath
	if j.Join == "oe" {
		p = j.OutputPath
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(msg)
}

// jobHome is where PBS starts a job: the owner's home directory, not the
// submission directory.
func jobHome(j *Job) string {
	for _, kv := range j.Env {
		if h, ok := strings.CutPrefix(kv, "HOME="); ok && h != "" {
			if st, err := os.Stat(h); err == nil && st.IsDir() {
				return h
			}
		}
	}
	return "/"
}

// jobEnv is qsub's environment (as with qsub -V), the -v variables, and
// the variables PBS sets in a batch job.
func jobEnv(j *Job, nodefile, tmpdir string) []string {
	get := func(k string) string {
		for i := len(j.Env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(j.Env[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
	env := append([]string(nil), j.Env...)
	for k, v := range j.Vars {
		env = append(env, k+"="+v)
	}
	ncpus := strconv.Itoa(j.NCPUs)
	env = append(env,
		"PBS_ENVIRONMENT=PBS_BATCH",
		"ENVIRONMENT=BATCH",
		"PBS_JOBID="+j.ID(),
		"PBS_JOBNAME="+j.Name,
		"PBS_QUEUE="+j.Queue,
		"PBS_O_QUEUE="+j.Queue,
		"PBS_O_WORKDIR="+j.Workdir,
		"PBS_O_HOME="+get("HOME"),
		"PBS_O_PATH="+get("PATH"),
		"PBS_O_SHELL="+get("SHELL"),
		"PBS_O_LOGNAME="+userName(),
		"PBS_O_HOST="+hostname(),
		"PBS_O_SYSTEM=Linux",
		"PBS_JOBDIR="+jobHome(j),
		"PBS_NODEFILE="+nodefile,
		"PBS_NODENUM=0",
		"PBS_TASKNUM=1",
		"PBS_MOMPORT=15003",
		"NCPUS="+ncpus,
		"OMP_NUM_THREADS="+ncpus,
		"TMPDIR="+tmpdir,
	)
	return env
}
