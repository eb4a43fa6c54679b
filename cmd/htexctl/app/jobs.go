package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/client"
	"github.com/htex/htex/wire"
)

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressLine renders a one-line progress bar.
func progressLine(p *wire.Progress, start time.Time) string {
	done := p.Succeeded + p.Failed
	const width = 30
	fill := 0
	if p.Total > 0 {
		fill = int(int64(width) * done / p.Total)
	}
	return fmt.Sprintf("\r[%s%s] %d/%d done, %d failed, %d unfinished, %s ",
		strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, p.Total, p.Failed, p.Total-done,
		time.Since(start).Round(time.Second))
}

// waitJob follows a job to its end and prints its summary; exit 1 when a
// task failed.
func waitJob(ctx context.Context, cl *client.Client, jobID uint64, asJSON bool) error {
	tty := isTerminal(os.Stderr)
	start := time.Now()
	last := time.Time{}
	doneAtStart := int64(-1)
	final, err := cl.Watch(ctx, jobID, false, func(p *wire.Progress) {
		if doneAtStart < 0 {
			doneAtStart = p.Succeeded + p.Failed
		}
		if tty && time.Since(last) > 100*time.Millisecond {
			last = time.Now()
			fmt.Fprint(os.Stderr, progressLine(p, start))
		}
	})
	if tty {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return clientError(fmt.Errorf("wait: %w", err))
	}
	sum := newWaitSummary(jobID, final.Total, final.Succeeded, final.Failed, max(doneAtStart, 0), time.Since(start))
	if err := sum.countFailures(ctx, cl); err != nil {
		return clientError(fmt.Errorf("wait: %w", err))
	}
	if err := sum.print(asJSON); err != nil {
		return failure("wait: %v", err)
	}
	if final.Failed > 0 {
		return cli.Exit("", ExitFailed)
	}
	return nil
}

func waitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait for a job (or, without JOB, for every task) to finish; exit 1 if a task failed",
		ArgsUsage: "[JOB]",
		Flags: []cli.Flag{runDirFlag, &cli.BoolFlag{Name: "json",
			Usage: "print the summary as JSON: {job_id,total,succeeded,failed,failed_by_kind,seconds,finished_while_waiting,tasks_per_second}"}},
		Action: func(c *cli.Context) error {
			cl, err := dial(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx := context.Background()
			if c.NArg() > 1 {
				return usageError("wait: want at most one JOB")
			}
			if c.NArg() == 1 {
				id, err := client.ParseJobID(c.Args().First())
				if err != nil {
					return usageError("wait: %v", err)
				}
				return waitJob(ctx, cl, id, c.Bool("json"))
			}
			tty := isTerminal(os.Stderr)
			start, doneAtStart := time.Now(), int64(-1)
			for {
				st, err := cl.Status(ctx)
				if err != nil {
					return clientError(err)
				}
				if doneAtStart < 0 {
					doneAtStart = st.Succeeded + st.Failed
				}
				if tty {
					fmt.Fprintf(os.Stderr, "\r%d queued, %d running, %d succeeded, %d failed   ", st.Queued, st.Running, st.Succeeded, st.Failed)
				}
				if st.Queued+st.Running == 0 {
					if tty {
						fmt.Fprintln(os.Stderr)
					}
					sum := newWaitSummary(0, st.Succeeded+st.Failed, st.Succeeded, st.Failed, doneAtStart, time.Since(start))
					if err := sum.countFailures(ctx, cl); err != nil {
						return clientError(fmt.Errorf("wait: %w", err))
					}
					if err := sum.print(c.Bool("json")); err != nil {
						return failure("wait: %v", err)
					}
					if st.Failed > 0 {
						return cli.Exit("", ExitFailed)
					}
					return nil
				}
				time.Sleep(250 * time.Millisecond)
			}
		},
	}
}

// resultJSON is one element of `results --json`.
type resultJSON struct {
	TaskID     uint64   `json:"task_id"`
	JobID      uint64   `json:"job_id"`
	ArrayIndex *int64   `json:"array_index"`
	State      string   `json:"state"`
	ExitCode   int32    `json:"exit_code"`
	Signal     int32    `json:"signal,omitempty"`
	ErrorKind  string   `json:"error_kind"`
	Error      string   `json:"error,omitempty"`
	Attempts   int32    `json:"attempts"`
	BlockID    int64    `json:"block_id"`
	Node       string   `json:"node"`
	Stdout     string   `json:"stdout"`
	Stderr     string   `json:"stderr"`
	Seconds    float64  `json:"seconds"`
	Argv       []string `json:"argv"`
	// The size asked for (0 = not asked) and what the last attempt got.
	Cores        int32    `json:"cores,omitempty"`
	GPUs         int32    `json:"gpus,omitempty"`
	MemBytes     int64    `json:"mem_bytes,omitempty"`
	Nodes        int32    `json:"nodes,omitempty"`
	RanksPerNode int32    `json:"ranks_per_node,omitempty"`
	GotCPUs      string   `json:"got_cpus,omitempty"`
	GotGPUs      string   `json:"got_gpus,omitempty"`
	GotNodes     []string `json:"got_nodes,omitempty"`
}

func toJSON(r *wire.TaskResult) resultJSON {
	j := resultJSON{TaskID: r.TaskId, JobID: r.JobId, State: r.State, ExitCode: r.ExitCode, Signal: r.Signal,
		ErrorKind: r.ErrorKind, Error: r.Error, Attempts: r.Attempts, BlockID: r.BlockId, Node: r.Node,
		Stdout: string(r.Stdout), Stderr: string(r.Stderr), Seconds: r.Seconds, Argv: r.Args(),
		Cores: r.Cores, GPUs: r.Gpus, MemBytes: r.MemBytes, Nodes: r.Nodes, RanksPerNode: r.RanksPerNode,
		GotCPUs: r.GotCpus, GotGPUs: r.GotGpus, GotNodes: r.GotNodes}
	if r.ArrayIndex >= 0 {
		ai := r.ArrayIndex
		j.ArrayIndex = &ai
	}
	return j
}

func resultsCommand() *cli.Command {
	return &cli.Command{
		Name:      "results",
		Usage:     "print the results of a job (or of every job)",
		ArgsUsage: "[JOB]",
		Flags: []cli.Flag{
			runDirFlag,
			&cli.BoolFlag{Name: "json", Usage: "a JSON list of objects (task_id, job_id, state, exit_code, error_kind, attempts, block_id, node, stdout, stderr, seconds, cores, gpus, mem_bytes, got_cpus, got_gpus, ...)"},
			&cli.BoolFlag{Name: "failed", Usage: "only tasks that did not succeed"},
		},
		Action: func(c *cli.Context) error {
			var jobID uint64
			if c.NArg() > 1 {
				return usageError("results: want at most one JOB")
			}
			if c.NArg() == 1 {
				id, err := client.ParseJobID(c.Args().First())
				if err != nil {
					return usageError("results: %v", err)
				}
				jobID = id
			}
			cl, err := dial(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			// Rows are printed as the pages come (a page is bounded in rows
			// and bytes): the table is aligned within each tablePage rows.
			asJSON := c.Bool("json")
			list := &jsonList{w: out}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(tw, "TASK\tJOB\tSTATE\tEXIT\tERROR\tATTEMPTS\tNODE\tSIZE\tGOT\tSECONDS\tSTDOUT")
			}
			rows := 0
			err = cl.Results(context.Background(), jobID, func(r *wire.TaskResult) error {
				if c.Bool("failed") && (r.State == "succeeded" || r.State == "queued" || r.State == "running") {
					return nil
				}
				if asJSON {
					return list.add(toJSON(r))
				}
				if rows++; rows%tablePage == 0 {
					if err := tw.Flush(); err != nil {
						return err
					}
				}
				first, _, _ := strings.Cut(strings.TrimSpace(string(r.Stdout)), "\n")
				if len(first) > 60 {
					first = first[:57] + "..."
				}
				fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%.3f\t%s\n", r.TaskId, r.JobId, r.State, r.ExitCode,
					dash(r.ErrorKind), r.Attempts, dash(r.Node), dash(sizeText(r)), dash(gotText(r)), r.Seconds, first)
				return nil
			})
			if err != nil {
				return clientError(fmt.Errorf("results: %w", err))
			}
			if asJSON {
				return list.close()
			}
			return tw.Flush()
		},
	}
}

// tablePage is how many rows of `results` are aligned and printed at once.
const tablePage = 1000

// sizeText writes the size a task asked for, short: "4c 1g 4G", "2n×4r".
func sizeText(r *wire.TaskResult) string {
	var parts []string
	if r.Cores > 0 {
		parts = append(parts, fmt.Sprintf("%dc", r.Cores))
	}
	if r.Gpus > 0 {
		parts = append(parts, fmt.Sprintf("%dg", r.Gpus))
	}
	if r.MemBytes > 0 {
		parts = append(parts, wire.FormatMem(r.MemBytes))
	}
	if r.Nodes > 1 {
		parts = append(parts, fmt.Sprintf("%dn×%dr", r.Nodes, max(r.RanksPerNode, 1)))
	}
	return strings.Join(parts, " ")
}

// gotText writes what a task got: "cpu 0-3 gpu 0,1", "nodes a,b".
func gotText(r *wire.TaskResult) string {
	var parts []string
	if r.GotCpus != "" {
		parts = append(parts, "cpu "+r.GotCpus)
	}
	if r.GotGpus != "" {
		parts = append(parts, "gpu "+r.GotGpus)
	}
	if len(r.GotNodes) > 0 {
		parts = append(parts, "nodes "+strings.Join(r.GotNodes, ","))
	}
	return strings.Join(parts, " ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the daemon's tasks, blocks, pools and the scaler's last decision",
		Flags: []cli.Flag{runDirFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			cl, err := dial(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			st, err := cl.Status(context.Background())
			if err != nil {
				return clientError(err)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(statusJSON(st))
			}
			printStatus(st)
			return nil
		},
	}
}

func statusJSON(st *wire.StatusReply) map[string]any {
	blocks := []map[string]any{}
	for _, b := range st.Blocks {
		blocks = append(blocks, map[string]any{"id": b.Id, "job_id": b.JobId, "state": b.State, "nodes": b.Nodes,
			"pools": b.Pools, "slots": b.Slots, "busy": b.Busy, "idle_since": msTime(b.IdleSinceUnixMs),
			"end_time": msTime(b.EndUnixMs), "message": b.Message, "stderr_path": b.StderrPath})
	}
	pools := []map[string]any{}
	for _, p := range st.Pools {
		pools = append(pools, map[string]any{"id": p.Id, "node": p.Node, "block_id": p.BlockId, "slots": p.Slots,
			"busy": p.Busy, "last_heartbeat": msTime(p.LastHeartbeatUnixMs), "draining": p.Draining})
	}
	return map[string]any{"label": st.Label, "run_dir": st.RunDir, "provider": st.Provider, "encrypted": st.Encrypted,
		"warning": st.Warning, "jobs": st.Jobs, "queued": st.Queued, "running": st.Running, "succeeded": st.Succeeded,
		"failed": st.Failed, "blocks": blocks, "pools": pools, "scaler": st.Scaler, "waiting": nonNil(st.Waiting)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func msTime(ms int64) any {
	if ms == 0 {
		return nil
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func printStatus(st *wire.StatusReply) {
	fmt.Fprintf(out, "daemon %s at %s (provider %s, encrypted %v)\n", st.Label, st.RunDir, st.Provider, st.Encrypted)
	if st.Warning != "" {
		fmt.Fprintf(out, "WARNING: %s\n", st.Warning)
	}
	fmt.Fprintf(out, "tasks: %d queued, %d running, %d succeeded, %d failed (%d jobs)\n", st.Queued, st.Running, st.Succeeded, st.Failed, st.Jobs)
	for _, w := range st.Waiting {
		fmt.Fprintf(out, "waiting: %s\n", w)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BLOCK\tJOB ID\tSTATE\tNODES\tPOOLS\tSLOTS\tBUSY\tIDLE SINCE\tENDS\tMESSAGE")
	for _, b := range st.Blocks {
		idle := "-"
		if b.IdleSinceUnixMs > 0 {
			idle = time.Since(time.UnixMilli(b.IdleSinceUnixMs)).Round(time.Second).String() + " ago"
		}
		ends := "-"
		if b.EndUnixMs > 0 {
			end := time.UnixMilli(b.EndUnixMs)
			ends = end.Format(time.TimeOnly)
			if left := time.Until(end).Round(time.Second); left > 0 {
				ends += " (in " + left.String() + ")"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", b.Id, dash(b.JobId), b.State, b.Nodes, b.Pools, b.Slots, b.Busy, idle, ends, b.Message)
	}
	tw.Flush()
	if st.Scaler != "" {
		fmt.Fprintf(out, "scaler: %s\n", st.Scaler)
	}
	for _, w := range st.Waiting {
		fmt.Fprintf(out, "waiting: %s\n", w)
	}
}

func cancelCommand() *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "cancel a job's unfinished tasks (running ones are killed)",
		ArgsUsage: "JOB",
		Flags:     []cli.Flag{runDirFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("cancel: want one JOB")
			}
			id, err := client.ParseJobID(c.Args().First())
			if err != nil {
				return usageError("cancel: %v", err)
			}
			cl, err := dial(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			msg, err := cl.Cancel(context.Background(), id)
			if err != nil {
				return clientError(err)
			}
			fmt.Fprintln(out, msg)
			return nil
		},
	}
}

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:  "stop",
		Usage: "stop the daemon: no new tasks, running ones finish (bounded by serve --stop-grace), blocks cancelled; queued tasks stay for a restart",
		Flags: []cli.Flag{runDirFlag, &cli.BoolFlag{Name: "no-wait", Usage: "return once the daemon has the request"}},
		Action: func(c *cli.Context) error {
			cl, err := dial(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cl.Stop(context.Background()); err != nil {
				return clientError(err)
			}
			if !c.Bool("no-wait") {
				// the daemon removes its connection file when it has stopped
				for i := 0; i < 1200; i++ {
					if _, err := os.Stat(cl.RunDir + "/connection.json"); os.IsNotExist(err) {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			fmt.Fprintln(out, "stopped")
			return nil
		},
	}
}
