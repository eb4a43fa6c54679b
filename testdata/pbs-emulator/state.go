package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverName is the PBS server every job id names.
const serverName = "emu-server"

// pbsVersion is what qstat reports as pbs_version.
const pbsVersion = "2022.1.5.20230918111016-emulator"

// Job is one job's record in the state directory (jobs/<seq>.json). Every
// read-modify-write of a record happens under the state lock.
type Job struct {
	Seq        int               `json:"seq"`
	Name       string            `json:"name"`
	Owner      string            `json:"owner"`
	Queue      string            `json:"queue"`
	Account    string            `json:"account,omitempty"`
	Project    string            `json:"project,omitempty"`
	Resources  map[string]string `json:"resources"` // Resource_List as given (select, walltime, place, ...)
	NodeCount  int               `json:"node_count"`
	NCPUs      int               `json:"ncpus"`    // per chunk
	MPIProcs   int               `json:"mpiprocs"` // lines per node in PBS_NODEFILE
	Walltime   int               `json:"walltime"` // seconds; 0 = no limit
	OutputPath string            `json:"output_path"`
	ErrorPath  string            `json:"error_path"`
	Join       string            `json:"join"` // n, oe, eo
	Shell      string            `json:"shell,omitempty"`
	Workdir    string            `json:"workdir"` // PBS_O_WORKDIR
	Script     string            `json:"script"`  // the copy taken at submission
	SubmitArgs string            `json:"submit_args"`
	Vars       map[string]string `json:"vars"` // -v
	Env        []string          `json:"env"`  // qsub's environment, given to the job
	StartDelay time.Duration     `json:"start_delay"`
	Steps      []step            `json:"steps,omitempty"` // PBS_EMULATOR_STATES (fate.go)
	KillDelay  time.Duration     `json:"kill_delay"`

	State      string    `json:"state"` // T W Q H R B S E F M
	Substate   int       `json:"substate"`
	Hold       bool      `json:"hold"`
	HoldType   string    `json:"hold_type,omitempty"` // Hold_Types: u (qsub -h) or s (system, H step)
	ExitStatus *int      `json:"exit_status,omitempty"`
	Comment    string    `json:"comment,omitempty"`
	Nodes      []string  `json:"nodes,omitempty"`
	Ctime      time.Time `json:"ctime"`
	Stime      time.Time `json:"stime,omitzero"`
	Mtime      time.Time `json:"mtime"`
	Obittime   time.Time `json:"obittime,omitzero"`
	RunCount   int       `json:"run_count"`
	WrapperPID int       `json:"wrapper_pid,omitempty"`
	PGID       int       `json:"pgid,omitempty"`
	Deleted    bool      `json:"deleted,omitempty"`
	Forced     bool      `json:"forced,omitempty"`
}

// history reports whether the job is a history record: finished (F) or
// moved to another server (M). qstat shows these only with -x.
func (j *Job) history() bool { return j.State == "F" || j.State == "M" }

// ID is the job's full id, e.g. "12.emu-server".
func (j *Job) ID() string { return fmt.Sprintf("%d.%s", j.Seq, serverName) }

// PBS substates (OpenPBS src/include/job.h).
const (
	substateQueued     = 10
	substateHeld       = 20
	substateRunning    = 42
	substateExiting    = 50
	substateTerminated = 91 // deleted with qdel
	substateFinished   = 92
	substateFailed     = 93
)

// Special exit statuses (JOB_EXEC_*).
const exitKillWalltime = -29

// stateDir is $PBS_EMULATOR_STATE, default /tmp/pbs-emulator-$UID.
func stateDir() string {
	if d := os.Getenv("PBS_EMULATOR_STATE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("pbs-emulator-%d", os.Getuid()))
}

func jobPath(seq int) string {
	return filepath.Join(stateDir(), "jobs", strconv.Itoa(seq)+".json")
}

// withLock runs fn holding the state directory's exclusive lock (flock).
func withLock(fn func() error) error {
	dir := stateDir()
	for _, d := range []string{dir, filepath.Join(dir, "jobs"), filepath.Join(dir, "aux"), filepath.Join(dir, "tmp"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// nextSeq takes the next job sequence number; call it under the lock.
func nextSeq() (int, error) {
	p := filepath.Join(stateDir(), "seq")
	n := 0
	if b, err := os.ReadFile(p); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	n++
	return n, writeFileAtomic(p, []byte(strconv.Itoa(n)+"\n"))
}

func loadJob(seq int) (*Job, error) {
	b, err := os.ReadFile(jobPath(seq))
	if err != nil {
		return nil, err
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", jobPath(seq), err)
	}
	return &j, nil
}

func saveJob(j *Job) error {
	j.Mtime = time.Now()
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(jobPath(j.Seq), b)
}

// updateJob loads, changes and saves a job under the lock.
func updateJob(seq int, fn func(j *Job) error) (*Job, error) {
	var out *Job
	err := withLock(func() error {
		j, err := loadJob(seq)
		if err != nil {
			return err
		}
		if err := fn(j); err != nil {
			return err
		}
		out = j
		return saveJob(j)
	})
	return out, err
}

// allJobs returns every job record, by sequence number.
func allJobs() ([]*Job, error) {
	entries, err := os.ReadDir(filepath.Join(stateDir(), "jobs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var jobs []*Job
	for _, e := range entries {
		seq, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".json"))
		if err != nil || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		j, err := loadJob(seq)
		if err != nil {
			continue
		}
		jobs = append(jobs, j)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Seq < jobs[b].Seq })
	return jobs, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp.%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// idPattern is an id as the client commands accept it: "12", "12.emu-server"
// or "12.emu-server.some.domain".
var idPattern = regexp.MustCompile(`^([0-9]+)(\.(.+))?$`)

// parseID returns the sequence number of a job id of this server.
func parseID(id string) (int, bool) {
	m := idPattern.FindStringSubmatch(strings.TrimSpace(id))
	if m == nil {
		return 0, false
	}
	if m[3] != "" && m[3] != serverName && !strings.HasPrefix(m[3], serverName+".") {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// hhmmss formats seconds as PBS does.
func hhmmss(sec int) string {
	if sec < 0 {
		sec = 0
	}
	return fmt.Sprintf("%02d:%02d:%02d", sec/3600, sec/60%60, sec%60)
}

// parseWalltime reads [[HH:]MM:]SS.
func parseWalltime(s string) (int, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) > 3 || s == "" {
		return 0, fmt.Errorf("bad walltime %q", s)
	}
	total := 0
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad walltime %q", s)
		}
		total = total*60 + n
	}
	return total, nil
}

// envDuration reads a duration from the environment: "2s", "500ms" or a
// number of seconds.
func envDuration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(f * float64(time.Second))
	}
	return def
}

// asctime is the time format of ctime, stime, ... in qstat output.
const asctime = "Mon Jan _2 15:04:05 2006"

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

func userName() string {
	for _, k := range []string{"USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}
