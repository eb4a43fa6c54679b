package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/bench"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure throughput and latency end to end (own daemon, own local pool)",
		Description: "exec mode runs /bin/true per task; noop mode makes the pool answer without\n" +
			"exec, which measures the dispatch path. Latency is submit-to-result as the\n" +
			"client sees it, including the journal commit of the submission and result.\n" +
			"For single-task latency use --window 1.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Value: "exec", Usage: "exec or noop"},
			&cli.IntFlag{Name: "tasks", Value: 10000, Usage: "tasks to run"},
			&cli.IntFlag{Name: "workers", Value: 2, Usage: "slots of the pool"},
			&cli.IntFlag{Name: "window", Usage: "tasks in flight at most (0 = all)"},
			&cli.IntFlag{Name: "prefetch", Value: 1000, Usage: "prefetch_capacity of the pool"},
			&cli.StringFlag{Name: "encrypted", Value: "true", Usage: "true, false, or both (runs both and prints the ratio)"},
			&cli.StringFlag{Name: "journal", Value: "true", Usage: "true, false (journal writes discarded: only to measure what the journal costs), or both"},
			&cli.BoolFlag{Name: "metrics", Usage: "run the daemon with its Prometheus metrics on (as serve --metrics), to measure their cost", EnvVars: []string{"HTEX_BENCH_METRICS"}},
			&cli.IntFlag{Name: "repeat", Value: 1, Usage: "run everything this many times, alternating the settings of --encrypted/--journal both, and compare the medians"},
			&cli.IntFlag{Name: "pools", Usage: "simulated pools instead of a local block: the daemon and the pools run as two processes of their own (noop mode)"},
			&cli.IntFlag{Name: "slots-per-pool", Value: 64, Usage: "slots of each simulated pool (with --pools)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON: {mode,tasks,workers,seconds,tasks_per_second,p50_ms,p99_ms,...}; with --pools also pools, slots_per_pool, register_seconds, daemon_rss_mb, status_p99_ms"},
		},
		Action: runBench,
	}
}

// Bounds of bench's own flags: far above any useful run, below what would
// exhaust memory or file descriptors.
const (
	maxBenchRepeat = 1000
	maxBenchPools  = 100_000
)

// benchSetting is one combination of the settings bench alternates.
type benchSetting struct{ encrypted, journal bool }

// runBench is the bench command: every setting asked for, repeat times,
// alternated, then the comparison of the two settings when there are two.
func runBench(c *cli.Context) error {
	modes, err := trueFalseBoth("encrypted", c.String("encrypted"))
	if err != nil {
		return err
	}
	journals, err := trueFalseBoth("journal", c.String("journal"))
	if err != nil {
		return err
	}
	repeat := c.Int("repeat")
	if repeat < 1 || repeat > maxBenchRepeat {
		return usageError("bench: --repeat %d: want 1 to %d", repeat, maxBenchRepeat)
	}
	if p := c.Int("pools"); p < 0 || p > maxBenchPools {
		return usageError("bench: --pools %d: want 0 (a local block) to %d", p, maxBenchPools)
	}
	exe, err := os.Executable()
	if err != nil {
		return failure("bench: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	reserveProcs(daemonBlockers + 1) // and the client
	var settings []benchSetting
	for range repeat {
		for _, enc := range modes {
			for _, jr := range journals {
				settings = append(settings, benchSetting{enc, jr})
			}
		}
	}
	var reports []*bench.Report
	for _, st := range settings {
		o := bench.Options{Mode: c.String("mode"), Tasks: c.Int("tasks"), Workers: c.Int("workers"),
			Window: c.Int("window"), Prefetch: c.Int("prefetch"), Encrypted: st.encrypted, NoJournal: !st.journal,
			Metrics: c.Bool("metrics"), Executable: exe, Log: os.Stderr, Pools: c.Int("pools"), SlotsPerPool: c.Int("slots-per-pool")}
		if isTerminal(os.Stderr) {
			o.Progress = func(done, total int) {
				if done%1000 == 0 || done == total {
					fmt.Fprintf(os.Stderr, "\r%d/%d", done, total)
				}
			}
		}
		r, err := bench.Run(ctx, o)
		if o.Progress != nil {
			fmt.Fprint(os.Stderr, "\r")
		}
		if err != nil {
			return failure("bench: %v", err)
		}
		reports = append(reports, r)
		printBenchReport(r, c.Bool("json"))
	}
	if per := len(modes) * len(journals); per == 2 && !c.Bool("json") {
		printBenchComparison(reports, len(journals) == 2, repeat)
	}
	return nil
}

func printBenchReport(r *bench.Report, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintln(out, string(b))
		return
	}
	pools := ""
	if r.Pools > 0 {
		pools = fmt.Sprintf(", %d pools x %d slots registered in %.2f s, daemon peak RSS %.0f MB, status p99 %.1f ms",
			r.Pools, r.SlotsPerPool, *r.RegisterSeconds, r.DaemonRSSMB, r.StatusP99ms)
	}
	fmt.Fprintf(out, "%s mode, %d tasks, %d workers, encrypted=%v, journal=%v, metrics=%v, window=%d, %d cores%s: %.0f tasks/s, p50 %.3f ms, p99 %.3f ms (%.2f s)\n",
		r.Mode, r.Tasks, r.Workers, r.Encrypted, r.Journal, r.Metrics, r.Window, r.Cores, pools, r.TasksPerSecond, r.P50ms, r.P99ms, r.Seconds)
}

// printBenchComparison compares two settings that ran alternately
// (reports in pairs); with repeat > 1 the medians of each setting's
// throughputs are the figures to compare (one run varies by several
// percent on a small machine).
func printBenchComparison(reports []*bench.Report, journalCost bool, repeat int) {
	var first, second []float64
	for i := 0; i+1 < len(reports); i += 2 {
		first = append(first, reports[i].TasksPerSecond)
		second = append(second, reports[i+1].TasksPerSecond)
	}
	a, b := median(first), median(second)
	runs := ""
	if repeat > 1 {
		runs = fmt.Sprintf(" (medians of %d runs each: %.0f vs %.0f tasks/s)", repeat, a, b)
	}
	if journalCost {
		fmt.Fprintf(out, "journal cost: %.1f%% of the throughput without it%s\n", 100*(1-a/b), runs)
	} else {
		fmt.Fprintf(out, "encrypted/plain throughput: %.1f%%%s\n", 100*a/b, runs)
	}
}

// trueFalseBoth parses a bench flag that runs one setting or both.
func trueFalseBoth(flag, v string) ([]bool, error) {
	switch v {
	case "true":
		return []bool{true}, nil
	case "false":
		return []bool{false}, nil
	case "both":
		return []bool{true, false}, nil
	}
	return nil, usageError("bench: --%s %q: want true, false or both", flag, v)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
