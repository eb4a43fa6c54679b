package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// submitOpts are qsub's options, from #PBS lines and then the command line
// (which wins).
type submitOpts struct {
	account, queue, name, out, errp, join, shell, project string
	resources                                             map[string]string
	resourceOrder                                         []string
	vars                                                  []string
	hold, quiet                                           bool
}

// Options that take a value, and options that qsub accepts and ignores.
const (
	valueOpts   = "AqlNoejSvWmMPrcakpuC"
	ignoredOpts = "WmMrckpuC"
	flagOpts    = "Vhz"
)

// unsupported options get a clear refusal rather than a wrong emulation.
var unsupported = map[byte]string{
	'I': "interactive jobs", 'X': "X11 forwarding", 'J': "job arrays",
	'a': "deferred execution (-a)", 'f': "foreground qsub (-f)",
}

// parseSubmitArgs applies args to o and returns the operands (the script).
func parseSubmitArgs(args []string, o *submitOpts) ([]string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if i+1 < len(args) {
				return nil, fmt.Errorf("qsub -- executable is not emulated; give a script")
			}
			return nil, nil
		}
		if len(a) < 2 || a[0] != '-' {
			return args[i:], nil
		}
		for k := 1; k < len(a); k++ {
			c := a[k]
			if why, ok := unsupported[c]; ok {
				return nil, fmt.Errorf("%s are not emulated", why)
			}
			if strings.IndexByte(flagOpts, c) >= 0 {
				switch c {
				case 'h':
					o.hold = true
				case 'z':
					o.quiet = true
				}
				continue
			}
			if strings.IndexByte(valueOpts, c) < 0 {
				return nil, fmt.Errorf("invalid option -- '%c'", c)
			}
			val := a[k+1:]
			if val == "" {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("option requires an argument -- '%c'", c)
				}
				i++
				val = args[i]
			}
			if err := o.set(c, val); err != nil {
				return nil, err
			}
			break
		}
	}
	return nil, nil
}

func (o *submitOpts) set(c byte, val string) error {
	switch c {
	case 'A':
		o.account = val
	case 'q':
		o.queue = val
	case 'N':
		o.name = val
	case 'o':
		o.out = val
	case 'e':
		o.errp = val
	case 'j':
		o.join = val
	case 'S':
		o.shell = val
	case 'P':
		o.project = val
	case 'v':
		o.vars = append(o.vars, splitVars(val)...)
	case 'l':
		for _, kv := range strings.Split(val, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return fmt.Errorf("illegal -l value %q: want resource=value", kv)
			}
			if _, seen := o.resources[k]; !seen {
				o.resourceOrder = append(o.resourceOrder, k)
			}
			o.resources[k] = v
		}
	default:
		if strings.IndexByte(ignoredOpts, c) < 0 {
			return fmt.Errorf("invalid option -- '%c'", c)
		}
	}
	return nil
}

// splitVars splits a -v list: "A=1,B=x y,C"; a value may be quoted.
func splitVars(s string) []string {
	var out []string
	var cur strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case quote == 0 && c == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// directives returns the #PBS lines' words, read until the first line that
// is neither blank nor a comment, as PBS does.
func directives(script []byte) ([]string, error) {
	var args []string
	sc := bufio.NewScanner(bytes.NewReader(script))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for first := true; sc.Scan(); first = false {
		line := strings.TrimSpace(sc.Text())
		if first && strings.HasPrefix(line, "#!") {
			continue
		}
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			break
		}
		rest, ok := strings.CutPrefix(line, "#PBS")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		words, err := shellWords(rest)
		if err != nil {
			return nil, fmt.Errorf("directive %q: %w", line, err)
		}
		args = append(args, words...)
	}
	return args, sc.Err()
}

// shellWords splits a directive into words; quotes group, '#' after a
// space starts a comment.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			return words, nil
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func qsub(args []string) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "qsub: "+format+"\n", a...)
		return code
	}
	probe := &submitOpts{resources: map[string]string{}}
	operands, err := parseSubmitArgs(args, probe)
	if err != nil {
		return fail(2, "%v", err)
	}
	if len(operands) > 1 {
		return fail(2, "too many arguments: %q", operands)
	}
	script, scriptName, err := readScript(operands)
	if err != nil {
		return fail(2, "could not read script: %v", err)
	}
	o := &submitOpts{resources: map[string]string{}}
	dargs, err := directives(script)
	if err != nil {
		return fail(2, "%v", err)
	}
	if rest, err := parseSubmitArgs(dargs, o); err != nil {
		return fail(2, "directive error: %v", err)
	} else if len(rest) > 0 {
		return fail(2, "directive error: unexpected %q", rest)
	}
	if _, err := parseSubmitArgs(args, o); err != nil {
		return fail(2, "%v", err)
	}
	if q := os.Getenv("PBS_EMULATOR_QUEUES"); q != "" && o.queue != "" && !contains(strings.Split(q, ","), o.queue) {
		return fail(170, "Unknown queue")
	}
	j, err := newJob(o, scriptName, strings.Join(args, " "))
	if err != nil {
		return fail(2, "%v", err)
	}
	if j.Steps, err = parseSteps(os.Getenv("PBS_EMULATOR_STATES")); err != nil {
		return fail(2, "%v", err)
	}
	strict := strings.TrimSpace(os.Getenv("PBS_EMULATOR_STRICT"))
	if strict != "" && o.queue == "" {
		j.Queue = "prod" // ALCF's default queue
	}
	fate, err := strictCheck(strict, os.Getenv("PBS_EMULATOR_ROUTE_AT_SUBMIT") != "", j)
	var r *refusal
	switch {
	case errors.As(err, &r):
		return fail(r.code, "%s", r.msg)
	case err != nil:
		return fail(2, "%v", err)
	case fate != nil:
		j.Steps = fate
	}
	if err := enqueueJob(j, o, script); err != nil {
		return fail(1, "%v", err)
	}
	if err := startWrapper(j.Seq); err != nil {
		_, _ = updateJob(j.Seq, func(j *Job) error {
			code := -1 // JOB_EXEC_FAIL1
			j.State, j.Substate, j.ExitStatus = "F", substateFailed, &code
			j.Comment = "emulator could not start the job: " + err.Error()
			return nil
		})
		return fail(1, "could not start job: %v", err)
	}
	if !o.quiet {
		fmt.Println(j.ID())
	}
	return 0
}

// readScript reads the job script: the one operand, or stdin (named
// STDIN, as qsub names it).
func readScript(operands []string) (script []byte, name string, err error) {
	if len(operands) == 0 {
		script, err = io.ReadAll(os.Stdin)
		return script, "STDIN", err
	}
	script, err = os.ReadFile(operands[0])
	return script, filepath.Base(operands[0]), err
}

// enqueueJob gives j its sequence number and saves it with its script,
// under the lock.
func enqueueJob(j *Job, o *submitOpts, script []byte) error {
	return withLock(func() error {
		seq, err := nextSeq()
		if err != nil {
			return err
		}
		j.Seq = seq
		j.Script = filepath.Join(stateDir(), "jobs", strconv.Itoa(seq)+".SC")
		if err := os.WriteFile(j.Script, script, 0o700); err != nil {
			return err
		}
		j.OutputPath = stdPath(o.out, j, "o")
		j.ErrorPath = stdPath(o.errp, j, "e")
		return saveJob(j)
	})
}

// newJob builds a queued job from the options.
func newJob(o *submitOpts, scriptName, submitArgs string) (*Job, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	j := &Job{
		Name: o.name, Owner: userName() + "@" + hostname(), Queue: o.queue,
		Account: o.account, Project: o.project, Resources: o.resources,
		Join: "n", Shell: o.shell, Workdir: wd, SubmitArgs: submitArgs,
		Vars: map[string]string{}, Env: os.Environ(),
		StartDelay: envDuration("PBS_EMULATOR_START_DELAY", 500*time.Millisecond),
		KillDelay:  envDuration("PBS_EMULATOR_KILL_DELAY", 2*time.Second),
		State:      "Q", Substate: substateQueued, Ctime: now, Mtime: now,
	}
	if j.Name == "" {
		j.Name = scriptName
	}
	if j.Queue == "" {
		j.Queue = "workq"
	}
	if o.join != "" {
		j.Join = o.join
	}
	if o.hold {
		j.State, j.Substate, j.Hold, j.HoldType = "H", substateHeld, true, "u"
	}
	for _, v := range o.vars {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			val = os.Getenv(k)
		}
		j.Vars[k] = val
	}
	if err := j.applyResources(); err != nil {
		return nil, err
	}
	return j, nil
}

// applyResources derives node count, cpus and walltime from Resource_List,
// filling the defaults PBS would.
func (j *Job) applyResources() error {
	r := j.Resources
	if r["select"] == "" {
		switch {
		case r["nodes"] != "":
			r["select"] = r["nodes"]
		case r["ncpus"] != "":
			r["select"] = "1:ncpus=" + r["ncpus"]
		default:
			r["select"] = "1"
		}
	}
	j.NodeCount, j.NCPUs, j.MPIProcs = 0, 1, 1
	for chunk := range strings.SplitSeq(r["select"], "+") {
		parts := strings.Split(chunk, ":")
		n := 1
		if c, err := strconv.Atoi(parts[0]); err == nil {
			if c < 1 {
				//lint:ignore ST1005 the words of OpenPBS's own qsub, which callers match
				return fmt.Errorf("Illegal attribute or resource value Resource_List.select")
			}
			n, parts = c, parts[1:]
		}
		j.NodeCount += n
		for _, p := range parts {
			k, v, _ := strings.Cut(p, "=")
			c, err := strconv.Atoi(v)
			if err != nil {
				continue
			}
			switch k {
			case "ncpus":
				j.NCPUs = c
			case "mpiprocs":
				j.MPIProcs = c
			}
		}
	}
	if j.NodeCount < 1 {
		//lint:ignore ST1005 the words of OpenPBS's own qsub, which callers match
		return fmt.Errorf("Illegal attribute or resource value Resource_List.select")
	}
	if w := r["walltime"]; w != "" {
		sec, err := parseWalltime(w)
		if err != nil {
			//lint:ignore ST1005 the words of OpenPBS's own qsub, which callers match
			return fmt.Errorf("Illegal attribute or resource value Resource_List.walltime")
		}
		j.Walltime = sec
		r["walltime"] = hhmmss(sec)
	}
	if r["place"] == "" {
		r["place"] = "free"
		if j.NodeCount == 1 {
			r["place"] = "pack"
		}
	}
	r["nodect"] = strconv.Itoa(j.NodeCount)
	r["ncpus"] = strconv.Itoa(j.NodeCount * j.NCPUs)
	return nil
}

// stdPath is where the job's stdout ("o") or stderr ("e") goes: the -o/-e
// path (relative to the submission directory; a directory gets the default
// name) or <workdir>/<name>.o<seq>.
func stdPath(given string, j *Job, kind string) string {
	def := fmt.Sprintf("%s.%s%d", j.Name, kind, j.Seq)
	if given == "" {
		return filepath.Join(j.Workdir, def)
	}
	if _, p, ok := strings.Cut(given, ":"); ok && !strings.HasPrefix(given, "/") {
		given = p // host:path
	}
	if !filepath.IsAbs(given) {
		given = filepath.Join(j.Workdir, given)
	}
	if st, err := os.Stat(given); err == nil && st.IsDir() {
		return filepath.Join(given, def)
	}
	return given
}

// startWrapper starts the detached process that runs job seq.
func startWrapper(seq int) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	logf, err := os.OpenFile(filepath.Join(stateDir(), "logs", strconv.Itoa(seq)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	p, err := os.StartProcess(exe, []string{exe, jobSubcommand, strconv.Itoa(seq)}, &os.ProcAttr{
		Dir:   "/",
		Env:   os.Environ(),
		Files: []*os.File{devnull, logf, logf},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return err
	}
	return p.Release()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}
