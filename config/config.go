// Package config owns the TOML site configuration: its schema, its defaults
// and its validation. It reads files and returns a checked *Config or an
// error that names every bad field with its value; it starts nothing.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/htex/htex/pinning"
)

// Config is a whole site configuration.
type Config struct {
	// Path is the file the config was read from ("" when built in code).
	Path     string   `toml:"-"`
	Executor Executor `toml:"executor"`
	Provider Provider `toml:"provider"`
	Strategy Strategy `toml:"strategy"`

	// written holds the keys the file sets ("executor.retries"), so that
	// an explicit zero is told from an absent key; nil for a Config built
	// in code, whose zero fields all take their defaults.
	written map[string]bool
}

// Executor holds the options of the daemon and of the worker pools.
type Executor struct {
	Label  string `toml:"label"`
	RunDir string `toml:"run_dir"`

	// Slots and pinning (SPEC.md "Slots" and "cpu_affinity").
	MaxWorkersPerNode     int          `toml:"max_workers_per_node"` // 0 = unlimited
	CoresPerWorker        float64      `toml:"cores_per_worker"`
	MemPerWorker          float64      `toml:"mem_per_worker"` // GB, 0 = no limit
	CPUAffinity           string       `toml:"cpu_affinity"`
	AvailableAccelerators Accelerators `toml:"available_accelerators"`
	GPUsPerNode           int          `toml:"gpus_per_node"` // physical GPUs, 0 = detect
	AllowSharedCPUs       bool         `toml:"allow_shared_cpus"`
	// AcceleratorVendor chooses the device variable of each slot: auto
	// (detect on the node), nvidia, amd or intel (see pinning.AcceleratorEnv).
	AcceleratorVendor string `toml:"accelerator_vendor"`

	// Dispatch and liveness.
	PrefetchCapacity   int      `toml:"prefetch_capacity"`
	HeartbeatPeriod    Duration `toml:"heartbeat_period"`
	HeartbeatThreshold Duration `toml:"heartbeat_threshold"`
	DrainPeriod        Duration `toml:"drain_period"`      // absent = max(60s, 2*heartbeat_period); 0 = drain only when a pool says so
	Retries            int      `toml:"retries"`           // default retry budget of a task; absent = 2
	OutputTailBytes    int      `toml:"output_tail_bytes"` // absent = 64 KiB; 0 = keep no output

	// Network.
	Address         string `toml:"address"` // advertised address; "" = every non-loopback address
	WorkerPort      int    `toml:"worker_port"`
	WorkerPortRange [2]int `toml:"worker_port_range"`
	ClientPort      int    `toml:"client_port"`
	Encrypted       *bool  `toml:"encrypted"`
	// AllowPlaintextNetwork lets encrypted = false listen on addresses
	// other than loopback (a trusted network).
	AllowPlaintextNetwork bool `toml:"allow_plaintext_network"`

	// WorkerCommand is how a batch script starts a pool; default: this binary.
	WorkerCommand string `toml:"worker_command"`
}

// Provider holds the batch-system options (SPEC.md "Providers").
type Provider struct {
	Kind             string   `toml:"kind"` // local, slurm, pbs
	NodesPerBlock    int      `toml:"nodes_per_block"`
	InitBlocks       *int     `toml:"init_blocks"`
	MinBlocks        int      `toml:"min_blocks"`
	MaxBlocks        *int     `toml:"max_blocks"`
	Parallelism      *float64 `toml:"parallelism"`
	Walltime         string   `toml:"walltime"` // HH:MM:SS
	WorkerInit       string   `toml:"worker_init"`
	SchedulerOptions string   `toml:"scheduler_options"`
	Launcher         string   `toml:"launcher"` // single, srun, mpiexec, mpiexec-openmpi, aprun, pbsdsh, simple
	LauncherOptions  string   `toml:"launcher_options"`
	CmdTimeout       Duration `toml:"cmd_timeout"`
	Template         string   `toml:"template"` // path of a template of the site's own
	// StatusPollingInterval is how often the scheduler is asked for the
	// blocks' states (one squeue/qstat call for all of them);
	// StatusPollingFast is the period while a block changes state.
	StatusPollingInterval Duration `toml:"status_polling_interval"`
	StatusPollingFast     Duration `toml:"status_polling_fast"`

	// slurm
	Account      string `toml:"account"`
	Partition    string `toml:"partition"`
	QOS          string `toml:"qos"`
	Constraint   string `toml:"constraint"`
	Exclusive    *bool  `toml:"exclusive"`
	CoresPerNode int    `toml:"cores_per_node"`
	MemPerNode   int    `toml:"mem_per_node"` // GB
	Clusters     string `toml:"clusters"`

	// pbs
	Queue         string `toml:"queue"`
	SelectOptions string `toml:"select_options"`
	CPUsPerNode   int    `toml:"cpus_per_node"`
	Place         string `toml:"place"`
}

// Strategy holds the scaler's options (SPEC.md "Blocks and scaling").
type Strategy struct {
	Kind             string   `toml:"kind"` // none, simple, htex_auto_scale
	MaxIdletime      Duration `toml:"max_idletime"`
	Period           Duration `toml:"period"`
	MaxBlockFailures int      `toml:"max_block_failures"`
	// FailureBackoff is how long the scaler stops submitting after
	// max_block_failures start failures in a row (doubling while it
	// goes on failing, up to 8 times).
	FailureBackoff Duration `toml:"failure_backoff"`
	// MaxPending cancels a block that no pool of it has joined after this
	// long, and counts it as failed; 0 = off.
	MaxPending Duration `toml:"max_pending"`
}

// Defaults used when a field is absent.
const (
	DefaultLabel              = "htex"
	DefaultHeartbeatPeriod    = 10 * time.Second
	DefaultHeartbeatThreshold = 60 * time.Second
	DefaultRetries            = 2
	DefaultOutputTailBytes    = 64 << 10
	DefaultMaxIdletime        = 120 * time.Second
	DefaultStrategyPeriod     = 5 * time.Second
	DefaultMaxBlockFailures   = 3
	DefaultFailureBackoff     = 10 * time.Minute
	// DefaultStatusPolling is the status polling interval of a batch
	// scheduler (Parsl uses 60 s, see scale/poll.go); a local provider's
	// costs nothing and is polled every DefaultLocalStatusPolling, as
	// Parsl's LocalProvider is.
	DefaultStatusPolling      = 30 * time.Second
	DefaultLocalStatusPolling = 5 * time.Second
	DefaultCmdTimeout         = 30 * time.Second
	DefaultWalltime           = "01:00:00"
)

// Load reads, decodes, defaults and validates a site config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	if c.Provider.Template != "" && !filepath.IsAbs(c.Provider.Template) {
		c.Provider.Template = filepath.Join(filepath.Dir(path), c.Provider.Template)
	}
	return c, nil
}

// Parse decodes TOML text, rejects unknown keys, applies defaults and validates.
func Parse(text string) (*Config, error) {
	var c Config
	md, err := toml.Decode(text, &c)
	if err != nil {
		var perr toml.ParseError
		if asParseError(err, &perr) {
			if perr.LastKey != "" {
				return nil, fmt.Errorf("line %d: %s: %s", perr.Position.Line, perr.LastKey, strings.TrimPrefix(perr.Message, "toml: "))
			}
			return nil, fmt.Errorf("line %d, column %d: %s", perr.Position.Line, perr.Position.Col, perr.Message)
		}
		if m := typeErr.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("line %s: %s: want a value of type %s, got %s", m[1], m[2], m[4], m[3])
		}
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		var msgs []string
		for _, k := range und {
			msgs = append(msgs, unknownKeyMessage(k.String()))
		}
		return nil, &Error{Problems: msgs}
	}
	c.written = map[string]bool{}
	for _, k := range md.Keys() {
		c.written[k.String()] = true
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Written reports whether the file set key (dotted, "executor.retries").
func (c *Config) Written(key string) bool { return c.written[key] }

var typeErr = regexp.MustCompile(`line (\d+) \(last key "([^"]+)"\): incompatible types: TOML value has type (\S+); destination has type (\S+)`)

// Default returns the configuration used when no file is given: the local
// provider, one block, one pool.
func Default() *Config {
	c := &Config{}
	c.Provider.Kind = "local"
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills absent fields. It is separate from Validate so that
// tools can show the effective configuration. A value the file wrote, zero
// included, is never replaced: Validate refuses the zeros that make no
// sense (cores_per_worker = 0) and the rest mean what their field says
// (retries = 0: no retry).
func (c *Config) ApplyDefaults() {
	c.executorDefaults()
	c.providerDefaults()
	c.strategyDefaults()
	c.pollingDefaults()
}

func (c *Config) executorDefaults() {
	e := &c.Executor
	if e.Label == "" && !c.written["executor.label"] {
		e.Label = DefaultLabel
	}
	if e.CoresPerWorker == 0 && !c.written["executor.cores_per_worker"] {
		e.CoresPerWorker = 1
	}
	if e.CPUAffinity == "" && !c.written["executor.cpu_affinity"] {
		e.CPUAffinity = "none"
	}
	if e.AcceleratorVendor == "" && !c.written["executor.accelerator_vendor"] {
		e.AcceleratorVendor = pinning.VendorAuto
	}
	if e.HeartbeatPeriod == 0 && !c.written["executor.heartbeat_period"] {
		e.HeartbeatPeriod = Duration(DefaultHeartbeatPeriod)
	}
	if e.HeartbeatThreshold == 0 && !c.written["executor.heartbeat_threshold"] {
		e.HeartbeatThreshold = Duration(DefaultHeartbeatThreshold)
	}
	if e.DrainPeriod == 0 && !c.written["executor.drain_period"] {
		e.DrainPeriod = Duration(max(60*time.Second, 2*time.Duration(e.HeartbeatPeriod)))
	}
	if e.Retries == 0 && !c.written["executor.retries"] {
		e.Retries = DefaultRetries
	}
	if e.OutputTailBytes == 0 && !c.written["executor.output_tail_bytes"] {
		e.OutputTailBytes = DefaultOutputTailBytes
	}
	if e.Encrypted == nil {
		t := true
		e.Encrypted = &t
	}
}

func (c *Config) providerDefaults() {
	p := &c.Provider
	if p.Kind == "" && !c.written["provider.kind"] {
		p.Kind = "local"
	}
	if p.NodesPerBlock == 0 && !c.written["provider.nodes_per_block"] {
		p.NodesPerBlock = 1
	}
	if p.InitBlocks == nil {
		one := 1
		p.InitBlocks = &one
	}
	if p.MaxBlocks == nil {
		m := max(1, *p.InitBlocks)
		p.MaxBlocks = &m
	}
	if p.Parallelism == nil {
		one := 1.0
		p.Parallelism = &one
	}
	if p.Walltime == "" && !c.written["provider.walltime"] {
		p.Walltime = DefaultWalltime
	}
	if p.CmdTimeout == 0 && !c.written["provider.cmd_timeout"] {
		p.CmdTimeout = Duration(DefaultCmdTimeout)
	}
	if p.Launcher == "" && !c.written["provider.launcher"] {
		switch p.Kind {
		case "slurm":
			p.Launcher = "srun"
		case "pbs":
			p.Launcher = "mpiexec"
		default:
			p.Launcher = "single"
		}
	}
	if p.Exclusive == nil {
		t := p.Kind == "slurm"
		p.Exclusive = &t
	}
	if p.Place == "" && p.Kind == "pbs" && !c.written["provider.place"] {
		p.Place = "scatter"
	}
}

func (c *Config) strategyDefaults() {
	s := &c.Strategy
	if s.Kind == "" && !c.written["strategy.kind"] {
		s.Kind = "simple"
	}
	if s.MaxIdletime == 0 && !c.written["strategy.max_idletime"] {
		s.MaxIdletime = Duration(DefaultMaxIdletime)
	}
	if s.Period == 0 && !c.written["strategy.period"] {
		s.Period = Duration(DefaultStrategyPeriod)
	}
	if s.MaxBlockFailures == 0 && !c.written["strategy.max_block_failures"] {
		s.MaxBlockFailures = DefaultMaxBlockFailures
	}
	if s.FailureBackoff == 0 && !c.written["strategy.failure_backoff"] {
		s.FailureBackoff = Duration(DefaultFailureBackoff)
	}
}

// pollingDefaults comes after strategyDefaults: the fast interval follows
// the scaler's period.
func (c *Config) pollingDefaults() {
	p, s := &c.Provider, &c.Strategy
	if p.StatusPollingInterval == 0 && !c.written["provider.status_polling_interval"] {
		p.StatusPollingInterval = Duration(DefaultStatusPolling)
		if p.Kind == "local" {
			p.StatusPollingInterval = Duration(DefaultLocalStatusPolling)
		}
	}
	if p.StatusPollingFast == 0 && !c.written["provider.status_polling_fast"] {
		// The scaler's period (at least 1 s), never slower than the
		// steady interval.
		p.StatusPollingFast = min(max(s.Period, Duration(time.Second)), p.StatusPollingInterval)
	}
}

// IsEncrypted reports whether CURVE is on (the default).
func (e *Executor) IsEncrypted() bool { return e.Encrypted == nil || *e.Encrypted }

// WalltimeDuration parses provider.walltime.
func (p *Provider) WalltimeDuration() (time.Duration, error) {
	return ParseWalltime(p.Walltime)
}

// MaxWalltime bounds provider.walltime: no batch system runs a job for a
// year, and a larger figure is a typo (or would overflow a Duration).
const MaxWalltime = 365 * 24 * time.Hour

// ParseWalltime parses "HH:MM:SS" (also "MM:SS", "D-HH:MM:SS") and rejects
// zero, negative and over MaxWalltime values.
func ParseWalltime(s string) (time.Duration, error) {
	bad := fmt.Errorf("walltime %q: want HH:MM:SS", s)
	days := 0
	rest := s
	if i := strings.IndexByte(s, '-'); i > 0 {
		n, ok := walltimeNumber(s[:i])
		if !ok {
			return 0, bad
		}
		days, rest = n, s[i+1:]
	}
	parts := strings.Split(rest, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, bad
	}
	var nums []int
	for _, p := range parts {
		n, ok := walltimeNumber(p)
		if !ok {
			return 0, bad
		}
		nums = append(nums, n)
	}
	for len(nums) < 3 {
		nums = append([]int{0}, nums...)
	}
	if nums[1] > 59 || nums[2] > 59 {
		return 0, fmt.Errorf("walltime %q: minutes and seconds must be below 60", s)
	}
	over := fmt.Errorf("walltime %q: over the limit of %d days", s, MaxWalltime/(24*time.Hour))
	if time.Duration(days) > MaxWalltime/(24*time.Hour) || time.Duration(nums[0]) > MaxWalltime/time.Hour {
		return 0, over // and the sum below cannot overflow
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(nums[0])*time.Hour +
		time.Duration(nums[1])*time.Minute + time.Duration(nums[2])*time.Second
	if d <= 0 {
		return 0, fmt.Errorf("walltime %q: must be positive", s)
	}
	if d > MaxWalltime {
		return 0, over
	}
	return d, nil
}

// walltimeNumber reads one field of a walltime, decimal digits only; a
// number of more than 9 digits reads as 10^9, over any limit.
func walltimeNumber(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	if len(strings.TrimLeft(s, "0")) > 9 {
		return 1e9, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
