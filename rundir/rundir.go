// Package rundir owns the layout of a run directory: the connection file
// that clients and pools read to find the daemon, and the CURVE key files.
// It reads and writes files only; it opens no sockets.
package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// File names inside a run directory.
const (
	ConnectionFile = "connection.json"
	JournalFile    = "htex.db"
	LogFile        = "daemon.log"
	PidFile        = "daemon.pid"
	LockFile       = "daemon.lock"
	KeysDir        = "keys"
	BlocksDir      = "blocks"
)

// ErrNoDaemon reports a run directory without a connection file.
var ErrNoDaemon = errors.New("no daemon has started in this run directory")

// PoolSettings are the executor options every pool of the run uses. The
// daemon writes them into the connection file so that the batch script's
// worker command line stays short.
type PoolSettings struct {
	MaxWorkersPerNode int      `json:"max_workers_per_node"`
	CoresPerWorker    float64  `json:"cores_per_worker"`
	MemPerWorker      float64  `json:"mem_per_worker"`
	CPUAffinity       string   `json:"cpu_affinity"`
	Accelerators      []string `json:"available_accelerators"`
	GPUsPerNode       int      `json:"gpus_per_node"`
	AllowSharedCPUs   bool     `json:"allow_shared_cpus"`
	AcceleratorVendor string   `json:"accelerator_vendor"` // auto, nvidia, amd, intel ("" = auto)
	PrefetchCapacity  int      `json:"prefetch_capacity"`
	HeartbeatPeriodMS int64    `json:"heartbeat_period_ms"`
	HeartbeatThreshMS int64    `json:"heartbeat_threshold_ms"`
	DrainPeriodMS     int64    `json:"drain_period_ms"`
	OutputTailBytes   int      `json:"output_tail_bytes"`
	WalltimeSeconds   int64    `json:"walltime_seconds"`
}

// Connection is the content of <run-dir>/connection.json.
type Connection struct {
	ProtocolVersion uint32       `json:"protocol_version"`
	Label           string       `json:"label"`
	Pid             int          `json:"pid"`
	Hostname        string       `json:"hostname"`
	Addresses       []string     `json:"addresses"` // loopback last
	ClientPort      int          `json:"client_port"`
	WorkerPort      int          `json:"worker_port"`
	Encrypted       bool         `json:"encrypted"`
	ServerPublicKey string       `json:"server_public_key,omitempty"`
	StartedAt       time.Time    `json:"started_at"`
	Pool            PoolSettings `json:"pool"`
}

// Path joins a name to the run directory.
func Path(dir, name string) string { return filepath.Join(dir, name) }

// Create makes the run directory (0700) and its blocks folder. An existing
// directory keeps its mode (it may be a shared folder that others use); it
// must belong to this user and be empty or a run directory already.
func Create(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create run directory: %w", err)
		}
	case err != nil:
		return fmt.Errorf("run directory: %w", err)
	default:
		if err := checkExisting(dir, st); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, BlocksDir), 0o700); err != nil {
		return fmt.Errorf("create blocks folder: %w", err)
	}
	return nil
}

// markers are the entries that make a folder a run directory.
var markers = []string{BlocksDir, JournalFile, KeysDir, ConnectionFile, LockFile}

// checkExisting accepts an existing folder as a run directory when it is a
// directory of this user that is empty or has a run directory's entries.
func checkExisting(dir string, st os.FileInfo) error {
	if !st.IsDir() {
		return fmt.Errorf("run directory %s: not a directory", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("run directory %s belongs to uid %d, not to you (uid %d): choose a folder of your own with --run-dir",
			dir, sys.Uid, os.Geteuid())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if len(ents) == 0 {
		return nil
	}
	for _, m := range markers {
		if _, err := os.Lstat(filepath.Join(dir, m)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("run directory %s is not empty and holds no run (no %s or %s): choose an empty or new folder with --run-dir",
		dir, JournalFile, BlocksDir)
}

// WriteConnection writes the connection file atomically (0600).
func WriteConnection(dir string, c *Connection) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ConnectionFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write connection file: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ConnectionFile)); err != nil {
		return fmt.Errorf("write connection file: %w", err)
	}
	return nil
}

// ReadConnection reads the connection file; ErrNoDaemon when absent.
func ReadConnection(dir string) (*Connection, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConnectionFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoDaemon)
	}
	if err != nil {
		return nil, fmt.Errorf("read connection file: %w", err)
	}
	var c Connection
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read connection file %s: %w", filepath.Join(dir, ConnectionFile), err)
	}
	return &c, nil
}

// RemoveConnection removes the connection file (on clean shutdown).
func RemoveConnection(dir string) {
	os.Remove(filepath.Join(dir, ConnectionFile))
}
