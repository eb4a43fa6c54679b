package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"

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
			&cli.IntFlag{Name: "repeat", Value: 1, Usage: "run everything this many times, alternating the settings of --encrypted/--journal both; the comparison is the median of the runs' ratios"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON: {mode,tasks,workers,seconds,tasks_per_second,p50_ms,p99_ms,...}"},
		},
		Action: func(c *cli.Context) error {
			modes, err := trueFalseBoth("encrypted", c.String("encrypted"))
			if err != nil {
				return err
			}
			journals, err := trueFalseBoth("journal", c.String("journal"))
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return failure("bench: %v", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			repeat := c.Int("repeat")
			if repeat < 1 {
				return usageError("bench: --repeat %d: want 1 or more", repeat)
			}
			var reports []*bench.Report
			type run struct{ enc, journal bool }
			var runs []run
			for range repeat {
				for _, enc := range modes {
					for _, jr := range journals {
						runs = append(runs, run{enc, jr})
					}
				}
			}
			for _, rn := range runs {
				o := bench.Options{Mode: c.String("mode"), Tasks: c.Int("tasks"), Workers: c.Int("workers"),
					Window: c.Int("window"), Prefetch: c.Int("prefetch"), Encrypted: rn.enc, NoJournal: !rn.journal,
					Executable: exe, Log: os.Stderr}
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
				if c.Bool("json") {
					b, _ := json.Marshal(r)
					fmt.Fprintln(out, string(b))
				} else {
					fmt.Fprintf(out, "%s mode, %d tasks, %d workers, encrypted=%v, journal=%v, window=%d, %d cores: %.0f tasks/s, p50 %.3f ms, p99 %.3f ms (%.2f s)\n",
						r.Mode, r.Tasks, r.Workers, r.Encrypted, r.Journal, r.Window, r.Cores, r.TasksPerSecond, r.P50ms, r.P99ms, r.Seconds)
				}
			}
			if per := len(modes) * len(journals); per == 2 && !c.Bool("json") {
				// Each pair ran back to back: its ratio is the comparison,
				// the median of the pairs' ratios the one to quote.
				ratios := make([]float64, 0, repeat)
				for i := 0; i+1 < len(reports); i += per {
					ratios = append(ratios, reports[i].TasksPerSecond/reports[i+1].TasksPerSecond)
				}
				slices.Sort(ratios)
				med := ratios[len(ratios)/2]
				if len(ratios)%2 == 0 {
					med = (ratios[len(ratios)/2-1] + med) / 2
				}
				what, value := "encrypted/plain throughput", func(r float64) float64 { return 100 * r }
				suffix := ""
				if len(journals) == 2 {
					what, value, suffix = "journal cost", func(r float64) float64 { return 100 * (1 - r) }, " of the throughput without it"
				}
				if repeat == 1 {
					fmt.Fprintf(out, "%s: %.1f%%%s\n", what, value(med), suffix)
				} else {
					all := make([]string, len(ratios))
					for i, r := range ratios {
						all[i] = fmt.Sprintf("%.1f", value(r))
					}
					fmt.Fprintf(out, "%s: median %.1f%%%s (%d pairs: %s)\n", what, value(med), suffix, repeat, strings.Join(all, " "))
				}
			}
			return nil
		},
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
