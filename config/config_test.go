package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDefaults(t *testing.T) {
	c, err := Parse("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Provider.Kind != "local" || *c.Provider.InitBlocks != 1 || *c.Provider.MaxBlocks != 1 || !c.Executor.IsEncrypted() ||
		c.Executor.HeartbeatPeriod.D() != DefaultHeartbeatPeriod || c.Strategy.Kind != "simple" || c.Provider.Launcher != "single" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Executor.AcceleratorVendor != "auto" {
		t.Fatalf("accelerator_vendor default %q, want auto", c.Executor.AcceleratorVendor)
	}
	if got := c.Executor.DrainPeriod.D(); got != 60*time.Second {
		t.Fatalf("drain_period default %s, want 60s", got)
	}
	s, err := Parse("[provider]\nkind = \"slurm\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.Provider.Launcher != "srun" || !*s.Provider.Exclusive {
		t.Fatalf("slurm defaults: launcher %q exclusive %v", s.Provider.Launcher, *s.Provider.Exclusive)
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse(`
[executor]
heartbeat_period = "2s"
heartbeat_threshold = 10
available_accelerators = 3
[provider]
kind = "pbs"
walltime = "1-02:03:04"
init_blocks = 2
max_blocks = 4
parallelism = 0.5
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Executor.HeartbeatPeriod.D() != 2*time.Second || c.Executor.HeartbeatThreshold.D() != 10*time.Second {
		t.Fatalf("durations: %v %v", c.Executor.HeartbeatPeriod.D(), c.Executor.HeartbeatThreshold.D())
	}
	if strings.Join(c.Executor.AvailableAccelerators, ",") != "0,1,2" {
		t.Fatalf("accelerators %v", c.Executor.AvailableAccelerators)
	}
	wt, _ := c.Provider.WalltimeDuration()
	if wt != 26*time.Hour+3*time.Minute+4*time.Second {
		t.Fatalf("walltime %v", wt)
	}
	if c.Provider.Place != "scatter" || c.Provider.Launcher != "mpiexec" {
		t.Fatalf("pbs defaults: place %q launcher %q", c.Provider.Place, c.Provider.Launcher)
	}
}

func TestPollingAndPendingDefaults(t *testing.T) {
	cases := []struct {
		name, text         string
		interval, fast     time.Duration
		maxPending, backup time.Duration
	}{
		{"local", "", 5 * time.Second, 5 * time.Second, 0, 10 * time.Minute},
		{"slurm", "[provider]\nkind = \"slurm\"", 30 * time.Second, 5 * time.Second, 0, 10 * time.Minute},
		{"pbs with a fast scaler", "[provider]\nkind = \"pbs\"\n[strategy]\nperiod = 0.2", 30 * time.Second, time.Second, 0, 10 * time.Minute},
		{"local with a slow scaler", "[strategy]\nperiod = 20", 5 * time.Second, 5 * time.Second, 0, 10 * time.Minute},
		{"all given", "[provider]\nkind = \"slurm\"\nstatus_polling_interval = \"2m\"\nstatus_polling_fast = 10\n" +
			"[strategy]\nmax_pending = \"1h\"\nfailure_backoff = \"30m\"", 2 * time.Minute, 10 * time.Second, time.Hour, 30 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse(c.text)
			if err != nil {
				t.Fatal(err)
			}
			p, s := cfg.Provider, cfg.Strategy
			if p.StatusPollingInterval.D() != c.interval || p.StatusPollingFast.D() != c.fast ||
				s.MaxPending.D() != c.maxPending || s.FailureBackoff.D() != c.backup {
				t.Errorf("got interval %s fast %s max_pending %s failure_backoff %s", p.StatusPollingInterval.D(),
					p.StatusPollingFast.D(), s.MaxPending.D(), s.FailureBackoff.D())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string // every substring must appear
	}{
		{"syntax", "[executor\nx = 1", []string{"line 2, column"}},
		{"type", "[executor]\ncores_per_worker = \"two\"", []string{"line 2", "executor.cores_per_worker", "float", "string"}},
		{"unknown key suggests", "[executor]\ncpu_afinity = \"block\"", []string{`unknown key "executor.cpu_afinity"`, `did you mean "executor.cpu_affinity"`}},
		{"key in the wrong table", "walltime = \"01:00:00\"", []string{`did you mean "provider.walltime"`}},
		{"walltime format", "[provider]\nwalltime = \"1h\"", []string{`provider.walltime "1h": want HH:MM:SS`}},
		{"walltime zero", "[provider]\nwalltime = \"00:00:00\"", []string{"must be positive"}},
		{"parallelism", "[provider]\nparallelism = 1.5", []string{"provider.parallelism 1.5", "[0, 1]"}},
		{"block order", "[provider]\nmin_blocks = 2\ninit_blocks = 1", []string{"min_blocks <= init_blocks <= max_blocks"}},
		{"cores_per_worker", "[executor]\ncores_per_worker = -1", []string{"executor.cores_per_worker -1: must be > 0"}},
		{"affinity value", "[executor]\ncpu_affinity = \"blocks\"", []string{`executor.cpu_affinity "blocks"`}},
		{"list ranks vs workers", "[executor]\nmax_workers_per_node = 2\ncpu_affinity = \"list:0:1:2\"", []string{"3 ranks", "max_workers_per_node allows at most 2"}},
		{"list ranks vs accelerators", "[executor]\navailable_accelerators = 2\ncpu_affinity = \"list:0:1:2\"", []string{"available_accelerators allows at most 2"}},
		{"empty accelerator", "[executor]\navailable_accelerators = [\"0\", \" \"]", []string{"available_accelerators[1]"}},
		{"accelerator type", "[executor]\navailable_accelerators = 1.5", []string{"available_accelerators"}},
		{"vendor typo", "[executor]\naccelerator_vendor = \"nvida\"", []string{`executor.accelerator_vendor "nvida": want auto, nvidia, amd or intel (did you mean "nvidia"?)`}},
		{"vendor case", "[executor]\naccelerator_vendor = \"AMD\"", []string{`executor.accelerator_vendor "AMD": want auto, nvidia, amd or intel (did you mean "amd"?)`}},
		{"vendor runtime name", "[executor]\naccelerator_vendor = \"rocm\"", []string{`executor.accelerator_vendor "rocm": want auto, nvidia, amd or intel (did you mean "amd"?)`}},
		{"vendor level zero", "[executor]\naccelerator_vendor = \"level_zero\"", []string{`(did you mean "intel"?)`}},
		{"vendor cuda", "[executor]\naccelerator_vendor = \"CUDA\"", []string{`(did you mean "nvidia"?)`}},
		{"vendor unknown", "[executor]\naccelerator_vendor = \"qualcomm\"", []string{`executor.accelerator_vendor "qualcomm": want auto, nvidia, amd or intel`}},
		{"vendor type", "[executor]\naccelerator_vendor = 1", []string{"executor.accelerator_vendor", "string"}},
		{"vendor key typo", "[executor]\naccelerator_vender = \"amd\"", []string{`did you mean "executor.accelerator_vendor"`}},
		{"provider kind", "[provider]\nkind = \"lsf\"", []string{`provider.kind "lsf"`}},
		{"launcher", "[provider]\nlauncher = \"jsrun\"", []string{`provider.launcher "jsrun"`}},
		{"strategy", "[strategy]\nkind = \"fast\"", []string{`strategy.kind "fast"`}},
		{"threshold", "[executor]\nheartbeat_period = 10\nheartbeat_threshold = 5", []string{"heartbeat_threshold"}},
		{"port range", "[executor]\nworker_port_range = [6000, 5000]", []string{"worker_port_range"}},
		{"duration", "[executor]\nheartbeat_period = \"soon\"", []string{"duration \"soon\""}},
		{"polling interval", "[provider]\nstatus_polling_interval = -1", []string{"provider.status_polling_interval -1s: must be > 0"}},
		{"fast polling slower than steady", "[provider]\nkind = \"slurm\"\nstatus_polling_interval = 20\nstatus_polling_fast = \"1m\"",
			[]string{"provider.status_polling_fast 1m0s: must not exceed status_polling_interval 20s"}},
		{"max_pending negative", "[strategy]\nmax_pending = \"-5m\"", []string{"strategy.max_pending -5m0s: must be >= 0 (0 = off)"}},
		{"failure_backoff negative", "[strategy]\nfailure_backoff = -1", []string{"strategy.failure_backoff -1s: must be > 0"}},
		{"max_pending misspelt", "[strategy]\nmax_pendin = 60", []string{`did you mean "strategy.max_pending"`}},
		{"tail too large", "[executor]\noutput_tail_bytes = 70000000", []string{"executor.output_tail_bytes 70000000", "[0, 8388608]", "--stdout/--stderr"}},
		{"retries negative", "[executor]\nretries = -1", []string{"executor.retries -1: must be in [0, 10000]"}},
		{"retries too many", "[executor]\nretries = 10001", []string{"executor.retries 10001: must be in [0, 10000]"}},
		{"tail negative", "[executor]\noutput_tail_bytes = -1", []string{"executor.output_tail_bytes -1"}},
		{"several at once", "[provider]\nparallelism = 2\nwalltime = \"x\"", []string{"parallelism", "walltime"}},
		// Each of these used to wrap around into a wrong duration (the
		// second one was accepted as 0.55 s) or, for the accelerators,
		// to end the process out of memory.
		{"duration past 292 years", "[executor]\nheartbeat_period = 10000000000", []string{"executor.heartbeat_period", "duration 10000000000: out of range (at most 9223372036 seconds)"}},
		{"duration wrapping to a small one", "[executor]\nheartbeat_period = 18446744074", []string{"executor.heartbeat_period", "out of range"}},
		{"duration inf", "[strategy]\nperiod = inf", []string{"strategy.period", "duration +Inf: out of range"}},
		{"duration nan", "[strategy]\nmax_idletime = nan", []string{"strategy.max_idletime", "duration NaN: out of range"}},
		{"duration float too large", "[provider]\ncmd_timeout = 1e300", []string{"provider.cmd_timeout", "out of range"}},
		// NaN passed every comparison, and inf the one that was there.
		{"cores_per_worker nan", "[executor]\ncores_per_worker = nan", []string{"executor.cores_per_worker NaN: must be a finite number"}},
		{"cores_per_worker inf", "[executor]\ncores_per_worker = inf", []string{"executor.cores_per_worker +Inf: must be a finite number"}},
		{"mem_per_worker nan", "[executor]\nmem_per_worker = nan", []string{"executor.mem_per_worker NaN: must be a finite number of GB"}},
		{"mem_per_worker inf", "[executor]\nmem_per_worker = inf", []string{"executor.mem_per_worker +Inf: must be a finite number of GB"}},
		{"parallelism nan", "[provider]\nparallelism = nan", []string{"provider.parallelism NaN: must be in [0, 1]"}},
		{"cores_per_node too many", "[provider]\ncores_per_node = 99999999999", []string{"provider.cores_per_node 99999999999: must be in [0, 65536]"}},
		{"cpus_per_node too many", "[provider]\ncpus_per_node = 70000", []string{"provider.cpus_per_node 70000: must be in [0, 65536]"}},
		{"accelerators too many", "[executor]\navailable_accelerators = 1000000000000", []string{"executor.available_accelerators", "1000000000000: want 0 to 1024"}},
		// Used to wrap around in the pool's registration (32 bits).
		{"prefetch too large", "[executor]\nprefetch_capacity = 5000000000", []string{"executor.prefetch_capacity 5000000000: must be in [0, 1048576]"}},
		{"gpus_per_node too large", "[executor]\ngpus_per_node = 5000", []string{"executor.gpus_per_node 5000: must be in [0, 1024]"}},
		{"accelerators negative", "[executor]\navailable_accelerators = -1", []string{"available_accelerators -1: want 0 to 1024"}},
		{"walltime past a year", "[provider]\nwalltime = \"3000000-00:00:00\"", []string{`provider.walltime "3000000-00:00:00": over the limit of 365 days`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.text)
			if err == nil {
				t.Fatal("Parse accepted a bad config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func FuzzConfig(f *testing.F) {
	f.Add("[executor]\ncores_per_worker = 2\n[provider]\nkind = \"slurm\"\nwalltime = \"00:10:00\"")
	f.Add("[executor]\navailable_accelerators = [\"0,1\", \"2\"]\ncpu_affinity = \"list:0-3:4-7\"")
	f.Add("walltime = 1")
	f.Add("[provider]\nwalltime = \"1-00:00:00\"\nparallelism = 0.25")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned a config that does not validate: %v", err)
		}
	})
}

func TestAcceleratorVendor(t *testing.T) {
	for _, v := range []string{"auto", "nvidia", "amd", "intel"} {
		c, err := Parse("[executor]\naccelerator_vendor = \"" + v + "\"\n")
		if err != nil || c.Executor.AcceleratorVendor != v {
			t.Errorf("accelerator_vendor %q: %v", v, err)
		}
	}
	// A value far from every vendor gets no suggestion.
	for _, v := range []string{"qualcomm", "", " "} {
		err := CheckVendor(v)
		if v == "" {
			if err == nil {
				t.Errorf("CheckVendor(%q) accepted the empty value (defaults fill it, Validate must not)", v)
			}
			continue
		}
		if err == nil || strings.Contains(err.Error(), "did you mean") {
			t.Errorf("CheckVendor(%q) = %v, want an error without a suggestion", v, err)
		}
	}
}
