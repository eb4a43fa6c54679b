package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// attr is one attribute of qstat -f output; val is a string, an int or
// []attr (Resource_List, resources_used, Variable_List).
type attr struct {
	key string
	val any
}

// qstat emulates OpenPBS's qstat: the table, -f, -f -F json, history
// with -x and -H, and -E for several ids at once.
func qstat(args []string) int {
	q, ok := parseQstatArgs(args)
	if !ok {
		return 2
	}
	var jobs []*Job
	rc := 0
	err := withLock(func() error {
		var err error
		jobs, rc, err = q.selectJobs()
		return err
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "qstat: %v\n", err)
		return 1
	}
	if q.format == "json" && !q.grouped && len(jobs) > 1 {
		// OpenPBS 23.06's qstat asks for one id at a time without -E,
		// and its JSON keeps only the first job (src/cmds/qstat.c,
		// display_statjob creates "Jobs" on its first call only).
		jobs = jobs[:1]
	}
	switch {
	case q.format == "json":
		os.Stdout.Write(renderJSON(jobs))
	case q.full:
		os.Stdout.WriteString(renderFull(jobs))
	default:
		os.Stdout.WriteString(renderTable(jobs))
	}
	return rc
}

// qstatArgs is a qstat command line.
type qstatArgs struct {
	full, history, finishedOnly, grouped bool
	format                               string // "" or json
	ids                                  []string
}

// parseQstatArgs reads qstat's options as OpenPBS does (clustered
// letters, -F and -u with their value attached or next); on a bad one it
// says why on stderr and returns false.
func parseQstatArgs(args []string) (q qstatArgs, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			q.ids = append(q.ids, a)
			continue
		}
	flags:
		for k := 1; k < len(a); k++ {
			switch c := a[k]; c {
			case 'f':
				q.full = true
			case 'x':
				q.history = true
			case 'H':
				q.history, q.finishedOnly = true, true
			case 'E':
				q.grouped = true
			case 'w', '1', 'n', 's', 't', 'J', 'a', 'i', 'r', 'p', 'G', 'M':
			case 'F', 'u':
				val := a[k+1:]
				if val == "" {
					if i+1 >= len(args) {
						fmt.Fprintf(os.Stderr, "qstat: option requires an argument -- '%c'\n", c)
						return q, false
					}
					i++
					val = args[i]
				}
				if c == 'F' {
					q.format = strings.ToLower(val)
				}
				break flags
			case 'B', 'Q':
				fmt.Fprintf(os.Stderr, "qstat: -%c is not emulated\n", c)
				return q, false
			default:
				fmt.Fprintf(os.Stderr, "qstat: invalid option -- '%c'\n", c)
				return q, false
			}
		}
	}
	if q.format != "" && q.format != "json" {
		fmt.Fprintf(os.Stderr, "qstat: -F %s is not emulated (only json)\n", q.format)
		return q, false
	}
	if q.format != "" && !q.full {
		fmt.Fprintln(os.Stderr, "qstat: -F requires -f")
		return q, false
	}
	return q, true
}

// selectJobs picks the jobs to show, under the lock, and the exit status
// OpenPBS gives for unknown and finished ids.
func (q qstatArgs) selectJobs() (jobs []*Job, rc int, err error) {
	all, err := allJobs()
	if err != nil {
		return nil, 0, err
	}
	if len(q.ids) == 0 {
		for _, j := range all {
			if j.history() == q.finishedOnly || (q.history && !q.finishedOnly) {
				jobs = append(jobs, j)
			}
		}
		return jobs, 0, nil
	}
	bySeq := map[int]*Job{}
	for _, j := range all {
		bySeq[j.Seq] = j
	}
	for _, id := range q.ids {
		seq, ok := parseID(id)
		j := bySeq[seq]
		switch {
		case (!ok || j == nil) && q.grouped:
			// -E sends the ids in one request: the server leaves
			// unknown ones out, and qstat says nothing (OpenPBS 23.06).
		case !ok || j == nil:
			fmt.Fprintf(os.Stderr, "qstat: Unknown Job Id %s\n", id)
			rc = 153 // PBSE_UNKJOBID
		case j.history() && !q.history:
			fmt.Fprintf(os.Stderr, "qstat: %s Job has finished, use -x or -H to obtain historical job information\n", j.ID())
			rc = 35 // PBSE_HISTJOBID
		default:
			jobs = append(jobs, j)
		}
	}
	return jobs, rc, nil
}

// jobAttrs lists a job's attributes in the order PBS Pro prints them.
func jobAttrs(j *Job) []attr {
	host := hostname()
	a := []attr{{"Job_Name", j.Name}, {"Job_Owner", j.Owner}}
	if !j.Stime.IsZero() {
		end := time.Now()
		if !j.Obittime.IsZero() {
			end = j.Obittime
		}
		a = append(a, attr{"resources_used", []attr{
			{"cpupercent", 0}, {"cput", "00:00:00"}, {"mem", "0kb"},
			{"ncpus", j.NodeCount * j.NCPUs}, {"vmem", "0kb"},
			{"walltime", hhmmss(int(end.Sub(j.Stime) / time.Second))},
		}})
	}
	a = append(a, attr{"job_state", j.State}, attr{"queue", j.Queue}, attr{"server", serverName})
	if j.Account != "" {
		a = append(a, attr{"Account_Name", j.Account})
	}
	a = append(a, attr{"Checkpoint", "u"}, attr{"ctime", j.Ctime.Format(asctime)},
		attr{"Error_Path", host + ":" + j.ErrorPath})
	if len(j.Nodes) > 0 {
		a = append(a, attr{"exec_host", execHost(j)}, attr{"exec_vnode", execVnode(j)})
	}
	holds := "n"
	if j.Hold {
		holds = j.HoldType
	}
	a = append(a, attr{"Hold_Types", holds}, attr{"Join_Path", j.Join}, attr{"Keep_Files", "n"},
		attr{"Mail_Points", "a"}, attr{"mtime", j.Mtime.Format(asctime)},
		attr{"Output_Path", host + ":" + j.OutputPath}, attr{"Priority", 0},
		attr{"qtime", j.Ctime.Format(asctime)}, attr{"Rerunable", "False"},
		attr{"Resource_List", resourceList(j)})
	if !j.Stime.IsZero() {
		a = append(a, attr{"stime", j.Stime.Format(asctime)})
	}
	if !j.Obittime.IsZero() {
		a = append(a, attr{"obittime", j.Obittime.Format(asctime)})
	}
	if j.PGID != 0 {
		a = append(a, attr{"session_id", j.PGID})
	}
	a = append(a, attr{"jobdir", jobHome(j)}, attr{"substate", j.Substate},
		attr{"Variable_List", variableList(j)})
	if j.Comment != "" {
		a = append(a, attr{"comment", j.Comment})
	}
	a = append(a, attr{"etime", j.Ctime.Format(asctime)}, attr{"run_count", j.RunCount})
	if j.ExitStatus != nil {
		a = append(a, attr{"Exit_status", *j.ExitStatus})
	}
	a = append(a, attr{"Submit_arguments", j.SubmitArgs})
	if j.history() {
		a = append(a, attr{"history_timestamp", int(j.Obittime.Unix())})
	}
	project := j.Project
	if project == "" {
		project = "_pbs_project_default"
	}
	return append(a, attr{"project", project}, attr{"Submit_Host", host})
}

func resourceList(j *Job) []attr {
	keys := make([]string, 0, len(j.Resources))
	for k := range j.Resources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []attr
	for _, k := range keys {
		v := j.Resources[k]
		if n, err := strconv.Atoi(v); err == nil && k != "walltime" {
			out = append(out, attr{k, n})
		} else {
			out = append(out, attr{k, v})
		}
	}
	return out
}

func variableList(j *Job) []attr {
	get := func(k string) string {
		for i := len(j.Env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(j.Env[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
	out := []attr{
		{"PBS_O_HOME", get("HOME")}, {"PBS_O_LANG", get("LANG")},
		{"PBS_O_LOGNAME", strings.Split(j.Owner, "@")[0]}, {"PBS_O_PATH", get("PATH")},
		{"PBS_O_SHELL", get("SHELL")}, {"PBS_O_WORKDIR", j.Workdir},
		{"PBS_O_SYSTEM", "Linux"}, {"PBS_O_QUEUE", j.Queue}, {"PBS_O_HOST", hostname()},
	}
	keys := make([]string, 0, len(j.Vars))
	for k := range j.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, attr{k, j.Vars[k]})
	}
	return out
}

// renderJSON writes `qstat -f -F json` output: tab-indented, "key":value,
// integers bare. With no jobs there is no "Jobs" key, as in PBS Pro.
func renderJSON(jobs []*Job) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n\t\"timestamp\":%d,\n\t\"pbs_version\":%s,\n\t\"pbs_server\":%s", time.Now().Unix(), jsonString(pbsVersion), jsonString(serverName))
	if len(jobs) > 0 {
		b.WriteString(",\n\t\"Jobs\":{\n")
		for i, j := range jobs {
			fmt.Fprintf(&b, "\t\t%s:", jsonString(j.ID()))
			writeObject(&b, jobAttrs(j), 2)
			if i < len(jobs)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("\t}")
	}
	b.WriteString("\n}\n")
	return b.Bytes()
}

func writeObject(b *bytes.Buffer, attrs []attr, depth int) {
	b.WriteString("{\n")
	for i, a := range attrs {
		b.WriteString(strings.Repeat("\t", depth+1))
		b.WriteString(jsonString(a.key))
		b.WriteByte(':')
		switch v := a.val.(type) {
		case int:
			b.WriteString(strconv.Itoa(v))
		case string:
			b.WriteString(jsonString(v))
		case []attr:
			writeObject(b, v, depth+1)
		}
		if i < len(attrs)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(strings.Repeat("\t", depth))
	b.WriteByte('}')
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// renderFull writes `qstat -f` text output.
func renderFull(jobs []*Job) string {
	var b strings.Builder
	for _, j := range jobs {
		fmt.Fprintf(&b, "Job Id: %s\n", j.ID())
		for _, a := range jobAttrs(j) {
			switch v := a.val.(type) {
			case []attr:
				if a.key == "Variable_List" {
					parts := make([]string, len(v))
					for i, x := range v {
						parts[i] = fmt.Sprintf("%s=%v", x.key, x.val)
					}
					fmt.Fprintf(&b, "    %s = %s\n", a.key, strings.Join(parts, ","))
					continue
				}
				for _, x := range v {
					fmt.Fprintf(&b, "    %s.%s = %v\n", a.key, x.key, x.val)
				}
			default:
				fmt.Fprintf(&b, "    %s = %v\n", a.key, v)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// renderTable writes plain qstat output.
func renderTable(jobs []*Job) string {
	if len(jobs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Job id            Name             User              Time Use S Queue\n")
	b.WriteString("----------------  ---------------- ----------------  -------- - -----\n")
	for _, j := range jobs {
		fmt.Fprintf(&b, "%-17s %-16.16s %-16.16s  %8s %s %s\n", j.ID(), j.Name,
			strings.Split(j.Owner, "@")[0], "00:00:00", j.State, j.Queue)
	}
	return b.String()
}
