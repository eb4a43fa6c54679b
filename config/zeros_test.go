package config

import (
	"strings"
	"testing"
	"time"
)

// TestExplicitZeros: a zero the file writes is honoured or refused with a
// message naming the field, never replaced by the default.
func TestExplicitZeros(t *testing.T) {
	honoured := []struct {
		name, toml string
		check      func(*Config) bool
	}{
		{"retries", "[executor]\nretries = 0\n", func(c *Config) bool { return c.Executor.Retries == 0 }},
		{"output_tail_bytes", "[executor]\noutput_tail_bytes = 0\n", func(c *Config) bool { return c.Executor.OutputTailBytes == 0 }},
		{"drain_period", "[executor]\ndrain_period = 0\n", func(c *Config) bool { return c.Executor.DrainPeriod == 0 }},
		{"max_idletime", "[strategy]\nmax_idletime = 0\n", func(c *Config) bool { return c.Strategy.MaxIdletime == 0 }},
		{"max_workers_per_node", "[executor]\nmax_workers_per_node = 0\n", func(c *Config) bool { return c.Executor.MaxWorkersPerNode == 0 }},
	}
	for _, tc := range honoured {
		t.Run("honoured/"+tc.name, func(t *testing.T) {
			c, err := Parse(tc.toml)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.check(c) {
				t.Fatalf("explicit zero of %s was replaced: %+v", tc.name, c.Executor)
			}
		})
	}
	refused := []struct{ name, toml, want string }{
		{"cores_per_worker", "[executor]\ncores_per_worker = 0\n", "executor.cores_per_worker 0: must be > 0"},
		{"heartbeat_period", "[executor]\nheartbeat_period = 0\n", "executor.heartbeat_period 0s: must be > 0"},
		{"heartbeat_threshold", "[executor]\nheartbeat_threshold = 0\n", "executor.heartbeat_threshold 0s"},
		{"label", "[executor]\nlabel = \"\"\n", "executor.label \"\""},
		{"nodes_per_block", "[provider]\nnodes_per_block = 0\n", "provider.nodes_per_block 0"},
		{"cmd_timeout", "[provider]\ncmd_timeout = 0\n", "provider.cmd_timeout 0s"},
		{"walltime", "[provider]\nwalltime = \"\"\n", "walltime \"\""},
		{"period", "[strategy]\nperiod = 0\n", "strategy.period 0s"},
		{"max_block_failures", "[strategy]\nmax_block_failures = 0\n", "strategy.max_block_failures 0"},
		{"place", "[provider]\nkind = \"pbs\"\nplace = \"\"\n", "provider.place \"\""},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			_, err := Parse(tc.toml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestAbsentKeysDefault: leaving a key out still gives its default.
func TestAbsentKeysDefault(t *testing.T) {
	c, err := Parse("[executor]\nlabel = \"x\"\n")
	if err != nil {
		t.Fatal(err)
	}
	e := c.Executor
	if e.Retries != DefaultRetries || e.OutputTailBytes != DefaultOutputTailBytes || e.CoresPerWorker != 1 ||
		e.HeartbeatPeriod.D() != DefaultHeartbeatPeriod || c.Strategy.MaxIdletime.D() != DefaultMaxIdletime ||
		e.DrainPeriod.D() != 60*time.Second {
		t.Fatalf("defaults not applied: %+v %+v", e, c.Strategy)
	}
	if !c.Written("executor.label") || c.Written("executor.retries") {
		t.Fatalf("Written: label %v retries %v", c.Written("executor.label"), c.Written("executor.retries"))
	}
}
