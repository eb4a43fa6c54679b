package pbs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/htex/htex/providers"
)

// job is the part of one entry of qstat's "Jobs" object that Status reads.
type job struct {
	State         flexString `json:"job_state"`
	Substate      pbsInt     `json:"substate"`
	ExitStatus    pbsInt     `json:"Exit_status"`
	Comment       flexString `json:"comment"`
	ResourceList  resources  `json:"Resource_List"`
	ResourcesUsed resources  `json:"resources_used"`
}

type resources struct {
	Walltime flexString `json:"walltime"`
}

// History substates of finished jobs (OpenPBS src/include/job.h).
const (
	substateTerminated = 91 // deleted with qdel
	substateFinished   = 92
	substateFailed     = 93
)

// Special Exit_status values (JOB_EXEC_* in OpenPBS src/include/job.h).
const exitKillWalltime = -29

var jobExecNames = map[int]string{
	-1: "JOB_EXEC_FAIL1", -2: "JOB_EXEC_FAIL2", -3: "JOB_EXEC_RETRY",
	-4: "JOB_EXEC_INITABT", -5: "JOB_EXEC_INITRST", -6: "JOB_EXEC_INITRMG",
	-7: "JOB_EXEC_BADRESRT", -10: "JOB_EXEC_FAILUID", -11: "JOB_EXEC_RERUN",
	-12: "JOB_EXEC_CHKP", -13: "JOB_EXEC_FAIL_PASSWORD", -14: "JOB_EXEC_RERUN_ON_SIS_FAIL",
	-15: "JOB_EXEC_QUERST", -16: "JOB_EXEC_FAILHOOK_RERUN", -17: "JOB_EXEC_FAILHOOK_DELETE",
	-18: "JOB_EXEC_HOOK_RERUN", -19: "JOB_EXEC_HOOK_DELETE", -20: "JOB_EXEC_RERUN_MS_FAIL",
	-21: "JOB_EXEC_FAIL_SECURITY", -22: "JOB_EXEC_HOOKERROR", -23: "JOB_EXEC_FAIL_KRB5",
	-24: "JOB_EXEC_KILL_NCPUS_BURST", -25: "JOB_EXEC_KILL_NCPUS_SUM", -26: "JOB_EXEC_KILL_VMEM",
	-27: "JOB_EXEC_KILL_MEM", -28: "JOB_EXEC_KILL_CPUT", -29: "JOB_EXEC_KILL_WALLTIME",
	-30: "JOB_EXEC_JOINJOB",
}

// stateMeanings say what the job_state letters other than Q and R mean, in
// the words of the qstat(1B) man page (OpenPBS doc/man1/qstat.1B), for
// Status.Message.
var stateMeanings = map[string]string{
	"W": "waiting for its start time (job_state W)",
	"T": "being moved to a new location (job_state T)",
	"H": "held (job_state H)",
	"S": "suspended (job_state S)",
	"U": "suspended while its workstation is busy (job_state U)",
	"E": "exiting after having run (job_state E)",
	"B": "array job begun (job_state B)",
	"M": "moved to another server (job_state M); this server no longer follows it",
}

// status maps one job to a providers.Status (see the package doc).
func (j job) status() providers.Status {
	letter := strings.ToUpper(strings.TrimSpace(string(j.State)))
	msg := join(stateMeanings[letter], string(j.Comment))
	switch letter {
	case "Q", "W", "T":
		return providers.Status{State: providers.Pending, Message: msg, Stuck: neverRuns(string(j.Comment))}
	case "H":
		// Held (by the user, an operator, or the server after too many
		// failed starts: "job held, too many failed attempts to run",
		// OpenPBS src/server/req_runjob.c): it waits for qrls.
		return providers.Status{State: providers.Held, Message: msg, Stuck: true}
	case "S", "U":
		return providers.Status{State: providers.Held, Message: msg}
	case "R", "E", "B":
		return providers.Status{State: providers.Running, Message: msg}
	case "F", "X":
		return j.finished()
	case "M":
		return providers.Status{State: providers.Unknown, Message: msg}
	}
	return providers.Status{State: providers.Unknown, Message: join(fmt.Sprintf("job_state %q", j.State), msg)}
}

func (j job) finished() providers.Status {
	comment := string(j.Comment)
	st := providers.Status{Message: comment}
	code, hasCode := j.ExitStatus.v, j.ExitStatus.ok
	if hasCode {
		st.ExitCode = code
	}
	switch {
	case hasCode && code == exitKillWalltime:
		st.State = providers.Timeout
		st.Message = join("walltime exceeded (Exit_status -29, JOB_EXEC_KILL_WALLTIME)", comment)
	case j.Substate.ok && j.Substate.v == substateTerminated:
		st.State = providers.Cancelled
		st.Message = join("deleted with qdel (substate 91)", describeExit(code, hasCode), comment)
	case !j.Substate.ok && commentSaysDeleted(comment):
		st.State = providers.Cancelled
		st.Message = join("deleted with qdel", describeExit(code, hasCode), comment)
	case hasCode && code == 0:
		st.State = providers.Completed
	case hasCode && code > 256 && j.walltimeReached():
		st.State = providers.Timeout
		st.Message = join("walltime exceeded", describeExit(code, hasCode), comment)
	case hasCode:
		st.State = providers.Failed
		st.Message = join(describeExit(code, hasCode), comment)
	default:
		st.State = providers.Failed
		st.Message = join("finished without an Exit_status", comment)
	}
	return st
}

// neverRuns reports whether the scheduler's comment on a queued job says
// it can never run as asked: the scheduler starts such comments with
// "Can Never Run", and those of jobs that wait for resources with "Not
// Running" (OpenPBS src/scheduler/constant.h, NEVER_RUN_PREFIX and
// NOT_RUN_PREFIX, written by src/scheduler/job_info.cpp).
func neverRuns(comment string) bool {
	return strings.HasPrefix(strings.TrimSpace(comment), "Can Never Run")
}

// commentSaysDeleted is the fallback for output without a substate:
// PBS Pro ends a qdel'ed job's comment with "and terminated".
func commentSaysDeleted(comment string) bool {
	c := strings.ToLower(comment)
	return strings.Contains(c, "terminated") || strings.Contains(c, "deleted")
}

// walltimeReached reports whether resources_used.walltime has reached
// Resource_List.walltime; false when either is missing.
func (j job) walltimeReached() bool {
	limit, ok1 := parseHMS(string(j.ResourceList.Walltime))
	used, ok2 := parseHMS(string(j.ResourcesUsed.Walltime))
	return ok1 && ok2 && limit > 0 && used >= limit
}

// parseHMS parses PBS durations: "HH:MM:SS", "MM:SS" or seconds.
func parseHMS(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	total := 0
	for part := range strings.SplitSeq(s, ":") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return 0, false
		}
		total = total*60 + n
	}
	return total, true
}

// describeExit names an Exit_status.
func describeExit(code int, ok bool) string {
	switch {
	case !ok:
		return ""
	case code < 0:
		if name, known := jobExecNames[code]; known {
			return fmt.Sprintf("Exit_status %d (%s)", code, name)
		}
		return fmt.Sprintf("Exit_status %d (PBS could not run the job)", code)
	case code > 256:
		sig := syscall.Signal(code - 256)
		return fmt.Sprintf("Exit_status %d (killed by signal %d, %s)", code, int(sig), sig)
	default:
		return fmt.Sprintf("Exit_status %d", code)
	}
}

func join(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "; ")
}

// pbsInt is an integer attribute that PBS may print as a number or, in some
// versions, as a string. ok is false when it is absent or not a number.
type pbsInt struct {
	v  int
	ok bool
}

func (p *pbsInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		*p = pbsInt{v: n, ok: true}
	} else if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int(f)) {
		*p = pbsInt{v: int(f), ok: true}
	}
	return nil // a value of another shape is treated as absent
}

// flexString is a string attribute that may also come as a number or an
// object; anything but a string or a number reads as "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*f = flexString(n.String())
	}
	return nil
}

// parseQstat reads the "Jobs" of `qstat -f -F json` output. Empty output
// means no jobs. Text before the first '{' is skipped, several documents in
// a row are merged, and known defects of PBS's JSON are repaired.
func parseQstat(out []byte) (map[string]job, error) {
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) == 0 {
		return map[string]job{}, nil
	}
	start := bytes.IndexByte(trimmed, '{')
	if start < 0 {
		return nil, badOutput(out, errors.New("no JSON object"))
	}
	jobs, err := decodeDocs(trimmed[start:])
	if err != nil {
		repaired := repairJSON(trimmed[start:])
		var err2 error
		if jobs, err2 = decodeDocs(repaired); err2 != nil {
			return nil, badOutput(out, err)
		}
	}
	return jobs, nil
}

// decodeDocs decodes one or more JSON objects in a row and merges their
// "Jobs". Anything after a complete first document that does not decode is
// ignored, and so is an entry that is not an object.
func decodeDocs(b []byte) (map[string]job, error) {
	jobs := map[string]job{}
	dec := json.NewDecoder(bytes.NewReader(b))
	for n := 0; ; n++ {
		var doc struct {
			Jobs map[string]job `json:"Jobs"`
		}
		err := dec.Decode(&doc)
		if err == io.EOF {
			return jobs, nil
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			err = nil // a job entry of another shape; the rest decoded
		}
		if err != nil {
			if n > 0 {
				return jobs, nil
			}
			return nil, err
		}
		for id, j := range doc.Jobs {
			jobs[id] = j
		}
	}
}

func badOutput(out []byte, err error) error {
	return fmt.Errorf("%w (%v); output begins %q", ErrBadOutput, err, head(string(out), 160))
}

var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// repairJSON fixes the defects PBS's JSON writer is known for, and returns
// valid JSON unchanged:
//   - an invalid escape inside a string ("\;", "\(") becomes a literal
//     backslash;
//   - a raw control character inside a string is escaped;
//   - a quote inside a string that is not followed by , } ] : or the end is
//     taken as a literal quote;
//   - a bare value that is not a JSON number or true/false/null (005, 1.2.3,
//     nan) becomes a string.
func repairJSON(b []byte) []byte {
	out := make([]byte, 0, len(b)+64)
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			out, i = repairString(out, b, i)
		case isStructural(c):
			out = append(out, c)
			i++
		default:
			j := i
			for j < len(b) && !isStructural(b[j]) && b[j] != '"' {
				j++
			}
			tok := string(b[i:j])
			if jsonNumber.MatchString(tok) || tok == "true" || tok == "false" || tok == "null" {
				out = append(out, tok...)
			} else {
				out = strconv.AppendQuote(out, tok)
			}
			i = j
		}
	}
	return out
}

// repairString copies the string starting at b[i] (a quote) and returns the
// index after its closing quote.
func repairString(out, b []byte, i int) ([]byte, int) {
	out = append(out, '"')
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '\\':
			if i+1 < len(b) && strings.IndexByte(`"\/bfnrt`, b[i+1]) >= 0 {
				out = append(out, c, b[i+1])
				i += 2
				continue
			}
			if i+5 < len(b) && b[i+1] == 'u' && isHex(b[i+2:i+6]) {
				out = append(out, b[i:i+6]...)
				i += 6
				continue
			}
			out = append(out, '\\', '\\')
			i++
		case c == '"':
			if closesString(b, i+1) {
				return append(out, '"'), i + 1
			}
			out = append(out, '\\', '"')
			i++
		case c < 0x20:
			out = fmt.Appendf(out, `\u%04x`, c)
			i++
		default:
			out = append(out, c)
			i++
		}
	}
	return append(out, '"'), i // unterminated: close it
}

// closesString reports whether a quote followed by b[i:] can end a JSON
// string: only whitespace, then , } ] : or the end.
func closesString(b []byte, i int) bool {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			continue
		case ',', '}', ']', ':':
			return true
		default:
			return false
		}
	}
	return true
}

func isStructural(c byte) bool {
	switch c {
	case '{', '}', '[', ']', ',', ':', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// jobIndex finds qstat's entry for an id given with or without the server
// suffix ("123", "123.polaris-pbs-01", "123.polaris-pbs-01.hsn.cm...").
type jobIndex struct {
	full  map[string]job
	short map[string][]string // "123" or "123[]" → full keys
}

func newJobIndex(jobs map[string]job) jobIndex {
	idx := jobIndex{full: jobs, short: map[string][]string{}}
	for key := range jobs {
		s := shortID(key)
		idx.short[s] = append(idx.short[s], key)
	}
	return idx
}

func (idx jobIndex) find(id string) (job, bool) {
	id = strings.TrimSpace(id)
	if j, ok := idx.full[id]; ok {
		return j, true
	}
	keys := idx.short[shortID(id)]
	if len(keys) == 1 {
		return idx.full[keys[0]], true
	}
	for _, k := range keys { // several servers: the one whose name agrees
		if strings.HasPrefix(k, id+".") || strings.HasPrefix(id, k+".") {
			return idx.full[k], true
		}
	}
	return job{}, false
}

func shortID(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return id[:i]
	}
	return id
}
