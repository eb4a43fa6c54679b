package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/config"
	"github.com/htex/htex/internal/zsock"
	"github.com/htex/htex/pinning"
	"github.com/htex/htex/pinning/detect"
	"github.com/htex/htex/rundir"
	"github.com/htex/htex/worker"
)

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run one worker pool on this node (started by a block's batch script)",
		Description: "Reads the run directory's connection file and pool key, lays out its slots\n" +
			"(see `htexctl plan`), connects to the daemon and runs tasks. A bad layout\n" +
			"fails here, loudly, before any task is accepted.",
		Flags: []cli.Flag{
			runDirFlag,
			&cli.Int64Flag{Name: "block-id", Value: -1, Usage: "the block this pool belongs to", EnvVars: []string{"HTEX_BLOCK_ID"}},
			&cli.StringFlag{Name: "node", Usage: "node name (default: $SLURMD_NODENAME, else the host name)", EnvVars: []string{"HTEX_NODE_NAME"}},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "mpi-launcher", Usage: "how this node starts the ranks of multi-node tasks: srun or mpiexec (set by the block's launcher; empty: it cannot)",
				EnvVars: []string{"HTEX_MPI_LAUNCHER"}},
		},
		Action: runWorker,
	}
}

// runWorker is the worker command: the first process supervises, the
// supervised one lays out the node and runs the pool.
func runWorker(c *cli.Context) error {
	if os.Getenv(worker.SupervisedEnv) == "" {
		// The process the batch script started supervises the pool, so
		// that no task outlives it (worker/supervise.go).
		code, err := worker.Supervise(os.Args, stoppedLimit(c))
		if err != nil {
			return failure("worker: %v", err)
		}
		if code != 0 {
			return cli.Exit("", code)
		}
		return nil
	}
	dir, err := resolveRunDir(c, "htex")
	if err != nil {
		return usageError("%v", err)
	}
	level, err := parseLevel(c.String("log-level"))
	if err != nil {
		return usageError("%v", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	conn, sec, err := poolConnection(dir)
	if err != nil {
		return failure("worker: %v", err)
	}
	ps := conn.Pool
	n, err := layOutNode(ps, log)
	if err != nil {
		return failure("worker: %v", err)
	}
	addrs, err := zsock.NumericHosts(c.Context, conn.Addresses)
	if err != nil {
		return failure("worker: daemon address in %s: %v", filepath.Join(dir, rundir.ConnectionFile), err)
	}
	var eps []string
	for _, a := range addrs {
		eps = append(eps, zsock.Endpoint(a, conn.WorkerPort))
	}
	host, _ := os.Hostname()
	name := nodeName(c.String("node"), host)
	blockID := c.Int64("block-id")
	poolID := newPoolID(name, blockID)
	reserveProcs(len(n.layout.Slots) + 1) // each slot in poll(2), the loop in zmq_poll
	p, err := worker.New(worker.Options{PoolID: poolID, Node: name, Hostname: host, BlockID: blockID,
		Endpoints: eps, Security: sec, Layout: n.layout, CPUs: len(n.node.CPUs), MemoryGB: n.node.MemoryGB,
		MemPerWorker: ps.MemPerWorker, Vendor: n.vendor, GPUs: n.gpus, SlotGroups: detect.SlotSockets("/", n.layout.Slots),
		Accelerators: ps.Accelerators, Prefetch: ps.PrefetchCapacity, TailBytes: ps.OutputTailBytes,
		Heartbeat:   time.Duration(ps.HeartbeatPeriodMS) * time.Millisecond,
		Threshold:   time.Duration(ps.HeartbeatThreshMS) * time.Millisecond,
		DrainPeriod: time.Duration(ps.DrainPeriodMS) * time.Millisecond, BlockEnd: blockEndFromEnv(), Log: log,
		MPILauncher: c.String("mpi-launcher")})
	if err != nil {
		return failure("worker: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = p.Run(ctx)
	zsock.Flush(time.Second) // the goodbye of a terminated pool leaves before exit
	if err != nil && !errors.Is(err, context.Canceled) {
		if errors.Is(err, zsock.ErrHandshake) {
			return failure("worker %s: %v; check that %s and the keys in %s belong to the daemon of this run",
				poolID, err, filepath.Join(dir, rundir.ConnectionFile), filepath.Join(dir, rundir.KeysDir))
		}
		return failure("worker %s: %v", poolID, err)
	}
	return nil
}

// poolConnection reads the run directory's connection file and, when the
// run is encrypted, the pool's key pair.
func poolConnection(dir string) (*rundir.Connection, *zsock.ClientSecurity, error) {
	conn, err := rundir.ReadConnection(dir)
	if err != nil {
		return nil, nil, err
	}
	if !conn.Encrypted {
		return conn, nil, nil
	}
	kp, err := rundir.LoadKeyPair(dir, rundir.Pool)
	if err != nil {
		return nil, nil, fmt.Errorf("pool key: %w", err)
	}
	return conn, &zsock.ClientSecurity{ServerPublic: conn.ServerPublicKey, Public: kp.Public, Secret: kp.Secret}, nil
}

// nodeLayout is this node as the pool sees it and its slots.
type nodeLayout struct {
	node   pinning.Node
	gpus   int
	vendor string
	layout *pinning.Layout
}

// layOutNode detects the node and plans its slots. When the CPU mask the
// launcher gave is smaller than the node, the error or warning names the
// launcher options to fix.
func layOutNode(ps rundir.PoolSettings, log *slog.Logger) (*nodeLayout, error) {
	node, err := detect.Node()
	if err != nil {
		return nil, err
	}
	gpus := ps.GPUsPerNode
	if gpus == 0 && len(ps.Accelerators) > 0 {
		gpus = detect.GPUs()
	}
	vendor, err := poolVendor(ps, log)
	if err != nil {
		return nil, err
	}
	layout, err := pinning.Plan(node, pinning.Options{MaxWorkersPerNode: ps.MaxWorkersPerNode,
		CoresPerWorker: ps.CoresPerWorker, MemPerWorker: ps.MemPerWorker, CPUAffinity: ps.CPUAffinity,
		Accelerators: ps.Accelerators, GPUs: gpus, AllowSharedCPUs: ps.AllowSharedCPUs, Vendor: vendor})
	hint := ""
	if mask, err := detect.AllowedCPUs(); err == nil {
		hint = pinning.LauncherBindHint(mask, detect.OnlineCPUs())
		if hint != "" && len(node.CPUs) > len(mask) { // HTEX_CORES (cores_per_node) counts more
			log.Warn(detect.EnvCores+" counts more CPUs than the pool may run on: "+hint, "cores", len(node.CPUs))
		}
	}
	if os.Getenv(detect.EnvCores) != "" {
		hint = "" // the layout used the override, not the mask
	}
	if err != nil {
		if hint != "" {
			return nil, fmt.Errorf("cannot lay out this node (%d CPUs, %.1f GB): %w; %s", len(node.CPUs), node.MemoryGB, err, hint)
		}
		return nil, fmt.Errorf("cannot lay out this node (%d CPUs, %.1f GB): %w", len(node.CPUs), node.MemoryGB, err)
	}
	if hint != "" && layout.CutByMask() {
		log.Warn("fewer slots than configured: "+hint, "slots", len(layout.Slots), "limited_by", layout.LimitedBy)
	}
	return &nodeLayout{node: node, gpus: gpus, vendor: vendor, layout: layout}, nil
}

// nodeName is the pool's node: --node, else $SLURMD_NODENAME, else the
// host name.
func nodeName(flag, host string) string {
	if flag != "" {
		return flag
	}
	if n := os.Getenv("SLURMD_NODENAME"); n != "" {
		return n
	}
	return host
}

// blockEndFromEnv is when the block ends, from $HTEX_BLOCK_END (Unix
// seconds, set by the batch script); zero when unknown.
func blockEndFromEnv() time.Time {
	if s := os.Getenv("HTEX_BLOCK_END"); s != "" {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil && sec > 0 {
			return time.Unix(sec, 0)
		}
	}
	return time.Time{}
}

// newPoolID names a pool: its node, its block and 4 random bytes, so that a
// restarted pool is a new one.
func newPoolID(node string, blockID int64) string {
	idb := make([]byte, 4)
	rand.Read(idb)
	return node + "-" + strconv.FormatInt(blockID, 10) + "-" + hex.EncodeToString(idb)
}

// poolVendor resolves accelerator_vendor on this node: an explicit vendor as
// it is, auto from the device files (detect.Vendors). Without accelerator
// entries the vendor does not matter and nothing is looked up.
func poolVendor(ps rundir.PoolSettings, log *slog.Logger) (string, error) {
	if len(ps.Accelerators) == 0 {
		return pinning.VendorUnknown, nil
	}
	var found []string
	if ps.AcceleratorVendor == pinning.VendorAuto || ps.AcceleratorVendor == "" {
		found = detect.Vendors("/")
	}
	vendor, why, err := pinning.ResolveVendor(ps.AcceleratorVendor, found)
	if err != nil {
		return "", err
	}
	name := vendor
	if name == pinning.VendorUnknown {
		name = "unknown (every vendor's variable)"
	}
	log.Info("accelerator vendor", "vendor", name, "how", why)
	return vendor, nil
}

// stoppedLimit is how long a stopped pool's tasks stay stopped before the
// supervisor kills them: the run's heartbeat threshold, after which the
// interchange runs them again elsewhere.
func stoppedLimit(c *cli.Context) time.Duration {
	if dir, err := resolveRunDir(c, "htex"); err == nil {
		if conn, err := rundir.ReadConnection(dir); err == nil && conn.Pool.HeartbeatThreshMS > 0 {
			return time.Duration(conn.Pool.HeartbeatThreshMS) * time.Millisecond
		}
	}
	return config.DefaultHeartbeatThreshold
}
