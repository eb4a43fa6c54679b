package interchange

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/wire"
)

// The scenario commands that are messages of pools and clients, and the
// daemon's commands (State).

func enc(m *wire.Envelope) []byte { return wire.MustEncode(m) }

func idList(v string) ([]uint64, error) {
	if v == "" {
		return nil, nil
	}
	var out []uint64
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("id %q: %v", s, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// result parses TASK:OUTCOME (ok, exit=N, timeout, cancelled, signal=N).
func parseResult(s string, now time.Time) (*wire.Result, error) {
	id, outcome, _ := strings.Cut(s, ":")
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("result %q: want TASK:OUTCOME", s)
	}
	r := &wire.Result{TaskId: n, EndUnixUs: now.UnixMicro()}
	kind, val, _ := strings.Cut(outcome, "=")
	code, _ := strconv.Atoi(val)
	switch kind {
	case "ok", "":
	case "exit":
		r.ErrorKind, r.ExitCode = wire.ErrorKind_EXIT, int32(code)
	case "signal":
		r.ErrorKind, r.Signal = wire.ErrorKind_SIGNAL, int32(code)
	case "timeout":
		r.ErrorKind = wire.ErrorKind_TIMEOUT
	case "cancelled":
		r.ErrorKind = wire.ErrorKind_CANCELLED
	default:
		return nil, fmt.Errorf("result %q: outcome %q: want ok, exit=N, signal=N, timeout or cancelled", s, outcome)
	}
	return r, nil
}

func resultsOf(a args, now time.Time) (*wire.Results, error) {
	m := &wire.Results{}
	seq, err := a.int("seq", 0)
	if err != nil {
		return nil, err
	}
	m.Seq = uint64(seq)
	for _, s := range a.rest[1:] {
		r, err := parseResult(s, now)
		if err != nil {
			return nil, err
		}
		m.Results = append(m.Results, r)
	}
	return m, nil
}

var poolCmds = map[string]func(h *harness, a args) ([]byte, error){
	// register POOL slots=N prefetch=N block=N end=+D running=1,2 ident=X mpi=srun
	// unacked=SEQ/TASK:OUTCOME/...  (one unacked Results message)
	// cpus=N gpus=N mem=SIZE  (what one slot holds; cpus=1 by default)
	"register": func(h *harness, a args) ([]byte, error) {
		r := &wire.Register{PoolId: a.str("id", a.rest[0]), Node: "node-" + a.rest[0], Hostname: a.rest[0]}
		slots, err := a.int("slots", 2)
		if err != nil {
			return nil, err
		}
		prefetch, err := a.int("prefetch", 0)
		if err != nil {
			return nil, err
		}
		block, err := a.int("block", 1)
		if err != nil {
			return nil, err
		}
		r.Slots, r.Prefetch, r.BlockId = int32(slots), int32(prefetch), block
		r.MpiLauncher = a.str("mpi", "")
		cpus, err := a.int("cpus", 1)
		if err != nil {
			return nil, err
		}
		gpus, err := a.int("gpus", 0)
		if err != nil {
			return nil, err
		}
		r.SlotCpus, r.SlotGpus, r.Cpus = int32(cpus), int32(gpus), int32(cpus*slots)
		if v, ok := a.kv["mem"]; ok {
			if r.SlotMemBytes, err = wire.ParseMem(v); err != nil {
				return nil, err
			}
			r.MemoryGb = float64(r.SlotMemBytes*slots) / (1 << 30)
		}
		for i := range gpus * slots {
			r.Accelerators = append(r.Accelerators, strconv.Itoa(int(i)))
		}
		if v, ok := a.kv["end"]; ok {
			t, err := offset(v)
			if err != nil {
				return nil, err
			}
			r.BlockEndUnixMs = t.UnixMilli()
		}
		if r.Running, err = idList(a.str("running", "")); err != nil {
			return nil, err
		}
		if v, ok := a.kv["unacked"]; ok {
			parts := strings.Split(v, "/")
			seq, err := strconv.ParseUint(parts[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("unacked=%q: want SEQ/TASK:OUTCOME/...", v)
			}
			m := &wire.Results{Seq: seq}
			for _, p := range parts[1:] {
				res, err := parseResult(p, h.now)
				if err != nil {
					return nil, err
				}
				m.Results = append(m.Results, res)
			}
			r.Unacked = append(r.Unacked, m)
		}
		return enc(&wire.Envelope{Body: &wire.Envelope_Register{Register: r}}), nil
	},
	"heartbeat": func(h *harness, a args) ([]byte, error) {
		return enc(&wire.Envelope{Body: &wire.Envelope_Heartbeat{Heartbeat: &wire.Heartbeat{}}}), nil
	},
	// results POOL seq=N TASK:OUTCOME ...
	"results": func(h *harness, a args) ([]byte, error) {
		m, err := resultsOf(a, h.now)
		if err != nil {
			return nil, err
		}
		return enc(&wire.Envelope{Body: &wire.Envelope_Results{Results: m}}), nil
	},
	"drain-notice": func(h *harness, a args) ([]byte, error) {
		return enc(&wire.Envelope{Body: &wire.Envelope_DrainNotice{DrainNotice: &wire.DrainNotice{}}}), nil
	},
	"leave": func(h *harness, a args) ([]byte, error) {
		return enc(&wire.Envelope{Body: &wire.Envelope_Shutdown{Shutdown: &wire.Shutdown{Reason: strings.Join(a.rest[1:], " ")}}}), nil
	},
	// pool-frame POOL version=N: a registration of another protocol version;
	// pool-frame POOL garbage: bytes that are no message
	"pool-frame": func(h *harness, a args) ([]byte, error) {
		if slicesContains(a.rest, "garbage") {
			return []byte{0xff, 0xff, 0xff}, nil
		}
		v, err := a.int("version", int64(wire.Version))
		if err != nil {
			return nil, err
		}
		return proto.Marshal(&wire.Envelope{Version: uint32(v), Body: &wire.Envelope_Register{
			Register: &wire.Register{PoolId: a.rest[0], Slots: 1}}})
	},
}

// taskSpec parses a task line: key=value options (prio, timeout, retries,
// env, cores, gpus, mem) and the argv.
func taskSpec(line string) (*wire.TaskSpec, error) {
	t := &wire.TaskSpec{Retries: -1, ArrayIndex: -1}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || len(t.Argv) > 0 {
			t.Argv = append(t.Argv, f)
			continue
		}
		switch k {
		case "prio":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("prio=%q", v)
			}
			t.Priority = int32(n)
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("timeout=%q", v)
			}
			t.TimeoutMs = d.Milliseconds()
		case "retries":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("retries=%q", v)
			}
			t.Retries = int32(n)
		case "env":
			t.Env = append(t.Env, v)
		case "nodes", "ranks", "cores", "gpus":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("%s=%q", k, v)
			}
			switch k {
			case "nodes":
				t.Nodes = int32(n)
			case "ranks":
				t.RanksPerNode = int32(n)
			case "cores":
				t.Cores = int32(n)
			default:
				t.Gpus = int32(n)
			}
		case "mem": // a size, or any integer (a client that checks nothing)
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				n, err = wire.ParseMem(v)
			}
			if err != nil {
				return nil, fmt.Errorf("mem=%q: %v", v, err)
			}
			t.MemBytes = n
		default:
			t.Argv = append(t.Argv, f)
		}
	}
	return t, nil
}

var clientCmds = map[string]func(h *harness, a args, input []string) ([]byte, error){
	// submit [client=C] [req=N] [job=N] [open] [name=X] + one task per input line
	"submit": func(h *harness, a args, input []string) ([]byte, error) {
		r := &wire.SubmitRequest{Name: a.str("name", ""), Last: !slicesContains(a.rest, "open")}
		job, err := a.int("job", 0)
		if err != nil {
			return nil, err
		}
		r.JobId = uint64(job)
		for _, l := range input {
			t, err := taskSpec(l)
			if err != nil {
				return nil, err
			}
			r.Tasks = append(r.Tasks, t)
		}
		return h.req(a, &wire.Envelope{Body: &wire.Envelope_Submit{Submit: r}})
	},
	"status": func(h *harness, a args, _ []string) ([]byte, error) {
		return h.req(a, &wire.Envelope{Body: &wire.Envelope_Status{Status: &wire.StatusRequest{}}})
	},
	// results-request [job=N] [after=N] [limit=N]
	"results-request": func(h *harness, a args, _ []string) ([]byte, error) {
		job, err := a.int("job", 0)
		if err != nil {
			return nil, err
		}
		after, err := a.int("after", 0)
		if err != nil {
			return nil, err
		}
		limit, err := a.int("limit", 0)
		if err != nil {
			return nil, err
		}
		return h.req(a, &wire.Envelope{Body: &wire.Envelope_ResultsRequest{ResultsRequest: &wire.ResultsRequest{
			JobId: uint64(job), AfterTaskId: uint64(after), Limit: int32(limit)}}})
	},
	// watch job=N [results]
	"watch": func(h *harness, a args, _ []string) ([]byte, error) {
		job, err := a.int("job", 0)
		if err != nil {
			return nil, err
		}
		return h.req(a, &wire.Envelope{Body: &wire.Envelope_Watch{Watch: &wire.WatchRequest{JobId: uint64(job),
			WantResults: slicesContains(a.rest, "results")}}})
	},
	"cancel": func(h *harness, a args, _ []string) ([]byte, error) {
		job, err := a.int("job", 0)
		if err != nil {
			return nil, err
		}
		return h.req(a, &wire.Envelope{Body: &wire.Envelope_Cancel{Cancel: &wire.CancelRequest{JobId: uint64(job)}}})
	},
	"stop": func(h *harness, a args, _ []string) ([]byte, error) {
		return h.req(a, &wire.Envelope{Body: &wire.Envelope_Stop{Stop: &wire.StopRequest{}}})
	},
	// client-frame version=N: a status request of another protocol version
	"client-frame": func(h *harness, a args, _ []string) ([]byte, error) {
		if slicesContains(a.rest, "garbage") { // a request id (field 2 = 9), then bytes that are no message
			return []byte{0x08, 0x01, 0x10, 0x09, 0xff, 0xff}, nil
		}
		v, err := a.int("version", int64(wire.Version))
		if err != nil {
			return nil, err
		}
		return proto.Marshal(&wire.Envelope{Version: uint32(v), RequestId: 7, Body: &wire.Envelope_Status{Status: &wire.StatusRequest{}}})
	},
}

func (h *harness) req(a args, m *wire.Envelope) ([]byte, error) {
	n, err := a.int("req", 1)
	if err != nil {
		return nil, err
	}
	m.RequestId = uint64(n)
	return enc(m), nil
}

func slicesContains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// errBusy is printed, not failed on: DrainIdleBlock declined.
var errBusy = fmt.Errorf("block busy: not drained")

func blockArg(a args) (int64, error) {
	if len(a.rest) != 1 {
		return 0, fmt.Errorf("want one BLOCK argument")
	}
	return strconv.ParseInt(a.rest[0], 10, 64)
}

var daemonCmds = map[string]func(st *State, a args) error{
	"block-ended": func(st *State, a args) error {
		b, err := blockArg(a)
		if err == nil {
			st.BlockEnded(b, "block "+a.rest[0]+" ended")
		}
		return err
	},
	"drain-block": func(st *State, a args) error {
		b, err := blockArg(a)
		if err == nil {
			st.DrainBlock(b)
		}
		return err
	},
	"drain-idle-block": func(st *State, a args) error {
		b, err := blockArg(a)
		if err == nil && !st.DrainIdleBlock(b) {
			return errBusy
		}
		return err
	},
	"stop-dispatch": func(st *State, a args) error { st.StopDispatch(); return nil },
	"shutdown-pools": func(st *State, a args) error {
		st.ShutdownPools("daemon stopping")
		return nil
	},
}
