package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/bench"
	"github.com/htex/htex/internal/zsock"
	"github.com/htex/htex/rundir"
)

// benchPoolsCommand runs the simulated pools of `bench --pools` in a
// process of their own; hidden, it is not meant to be run by hand.
func benchPoolsCommand() *cli.Command {
	return &cli.Command{
		Name:   "bench-pools",
		Hidden: true,
		Usage:  "run simulated noop pools against a daemon (for bench --pools)",
		Flags: []cli.Flag{
			runDirFlag,
			&cli.IntFlag{Name: "pools", Value: 1, Usage: "simulated pools"},
			&cli.IntFlag{Name: "slots-per-pool", Value: 64, Usage: "slots of each"},
			&cli.IntFlag{Name: "prefetch", Value: 0, Usage: "prefetch capacity of each"},
		},
		Action: func(c *cli.Context) error {
			dir, err := resolveRunDir(c, "htex")
			if err != nil {
				return usageError("%v", err)
			}
			conn, err := rundir.ReadConnection(dir)
			if err != nil {
				return failure("bench-pools: %v", err)
			}
			var sec *zsock.ClientSecurity
			if conn.Encrypted {
				kp, err := rundir.LoadKeyPair(dir, rundir.Pool)
				if err != nil {
					return failure("bench-pools: pool key: %v", err)
				}
				sec = &zsock.ClientSecurity{ServerPublic: conn.ServerPublicKey, Public: kp.Public, Secret: kp.Secret}
			}
			addrs, err := zsock.NumericHosts(c.Context, conn.Addresses)
			if err != nil || len(addrs) == 0 {
				return failure("bench-pools: daemon address in %s: %v", filepath.Join(dir, rundir.ConnectionFile), err)
			}
			// The last address is loopback (zsock.Addresses): the pools
			// run on the daemon's machine.
			ep := zsock.Endpoint(addrs[len(addrs)-1], conn.WorkerPort)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = bench.RunSimPools(ctx, bench.SimOptions{Endpoint: ep, Security: sec, Pools: c.Int("pools"),
				SlotsPerPool: c.Int("slots-per-pool"), Prefetch: c.Int("prefetch"),
				Heartbeat: time.Duration(conn.Pool.HeartbeatPeriodMS) * time.Millisecond})
			if err != nil {
				return failure("bench-pools: %v", err)
			}
			fmt.Fprintln(os.Stderr, "bench-pools: done")
			return nil
		},
	}
}
