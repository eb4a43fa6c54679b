package detect

import (
	"context"
	"errors"
	"os/exec"
	"reflect"
	"testing"

	"github.com/htex/htex/internal/execx"

	"github.com/htex/htex/internal/testenv"
)

const meminfo = `MemTotal:       263842520 kB
MemFree:        120000000 kB
MemAvailable:   251234567 kB
Buffers:          1234567 kB
`

func TestNodeOverrides(t *testing.T) {
	allowed := func() ([]int, error) { return []int{2, 3, 5, 7, 11}, nil }
	failing := func() ([]int, error) { return nil, errors.New("no sched_getaffinity here") }
	mem := func() ([]byte, error) { return []byte(meminfo), nil }
	noMem := func() ([]byte, error) { return nil, errors.New("no /proc") }

	tests := []struct {
		name     string
		env      map[string]string
		allowed  func() ([]int, error)
		meminfo  func() ([]byte, error)
		wantCPUs []int
		wantMem  float64
		err      string
	}{
		{name: "detected", allowed: allowed, meminfo: mem, wantCPUs: []int{2, 3, 5, 7, 11}, wantMem: 239.6},
		{name: "cores within the cpuset", env: map[string]string{"HTEX_CORES": "3"}, allowed: allowed, meminfo: mem,
			wantCPUs: []int{2, 3, 5}, wantMem: 239.6},
		{name: "cores equal to the cpuset", env: map[string]string{"HTEX_CORES": "5"}, allowed: allowed, meminfo: mem,
			wantCPUs: []int{2, 3, 5, 7, 11}, wantMem: 239.6},
		{name: "cores beyond the cpuset", env: map[string]string{"HTEX_CORES": "8"}, allowed: allowed, meminfo: mem,
			wantCPUs: []int{0, 1, 2, 3, 4, 5, 6, 7}, wantMem: 239.6},
		{name: "cores without affinity", env: map[string]string{"HTEX_CORES": " 2 "}, allowed: failing, meminfo: mem,
			wantCPUs: []int{0, 1}, wantMem: 239.6},
		{name: "memory override", env: map[string]string{"HTEX_MEMORY_GB": "64.5"}, allowed: allowed, meminfo: noMem,
			wantCPUs: []int{2, 3, 5, 7, 11}, wantMem: 64.5},
		{name: "memory override zero", env: map[string]string{"HTEX_MEMORY_GB": "0"}, allowed: allowed, meminfo: noMem,
			wantCPUs: []int{2, 3, 5, 7, 11}, wantMem: 0},
		{name: "both", env: map[string]string{"HTEX_CORES": "4", "HTEX_MEMORY_GB": "16"}, allowed: failing, meminfo: noMem,
			wantCPUs: []int{0, 1, 2, 3}, wantMem: 16},
		{name: "bad cores", env: map[string]string{"HTEX_CORES": "four"}, allowed: allowed, meminfo: mem,
			err: `HTEX_CORES "four": want a positive number of CPUs`},
		{name: "zero cores", env: map[string]string{"HTEX_CORES": "0"}, allowed: allowed, meminfo: mem,
			err: `HTEX_CORES "0": want a positive number of CPUs`},
		{name: "fractional cores", env: map[string]string{"HTEX_CORES": "2.5"}, allowed: allowed, meminfo: mem,
			err: `HTEX_CORES "2.5": want a positive number of CPUs`},
		{name: "bad memory", env: map[string]string{"HTEX_MEMORY_GB": "lots"}, allowed: allowed, meminfo: mem,
			err: `HTEX_MEMORY_GB "lots": want a number of GB >= 0`},
		{name: "negative memory", env: map[string]string{"HTEX_MEMORY_GB": "-1"}, allowed: allowed, meminfo: mem,
			err: `HTEX_MEMORY_GB "-1": want a number of GB >= 0`},
		{name: "NaN memory", env: map[string]string{"HTEX_MEMORY_GB": "NaN"}, allowed: allowed, meminfo: mem,
			err: `HTEX_MEMORY_GB "NaN": want a number of GB >= 0`},
		{name: "no affinity", allowed: failing, meminfo: mem,
			err: `read the allowed CPUs (set HTEX_CORES to override): no sched_getaffinity here`},
		{name: "no meminfo", allowed: allowed, meminfo: noMem,
			err: `read available memory (set HTEX_MEMORY_GB to override): no /proc`},
		{name: "meminfo without MemAvailable", allowed: allowed, meminfo: func() ([]byte, error) { return []byte("MemTotal: 1 kB\n"), nil },
			err: `/proc/meminfo: no MemAvailable line (set HTEX_MEMORY_GB to override)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			n, err := node(getenv, tt.allowed, tt.meminfo)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("node() = %+v, %v; want error %s", n, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(n.CPUs, tt.wantCPUs) || n.MemoryGB != tt.wantMem {
				t.Errorf("node() = %v, %g GB; want %v, %g GB", n.CPUs, n.MemoryGB, tt.wantCPUs, tt.wantMem)
			}
		})
	}
}

// TestNodeEnv runs the real Node with the overrides set.
func TestNodeEnv(t *testing.T) {
	t.Setenv("HTEX_CORES", "3")
	t.Setenv("HTEX_MEMORY_GB", "12.5")
	n, err := Node()
	if err != nil {
		t.Fatal(err)
	}
	if len(n.CPUs) != 3 || n.MemoryGB != 12.5 {
		t.Errorf("Node() = %v, %g GB; want 3 CPUs, 12.5 GB", n.CPUs, n.MemoryGB)
	}
	t.Setenv("HTEX_CORES", "x")
	if _, err := Node(); err == nil || err.Error() != `HTEX_CORES "x": want a positive number of CPUs` {
		t.Errorf("Node() with HTEX_CORES=x: %v", err)
	}
}

// TestNodeDetected checks the real detection on this machine.
func TestNodeDetected(t *testing.T) {
	t.Setenv("HTEX_CORES", "")
	t.Setenv("HTEX_MEMORY_GB", "")
	n, err := Node()
	if err != nil {
		testenv.SkipOrFail(t, "no detection here: %v", err)
	}
	if len(n.CPUs) == 0 || n.MemoryGB <= 0 {
		t.Errorf("Node() = %v, %g GB", n.CPUs, n.MemoryGB)
	}
	for i := 1; i < len(n.CPUs); i++ {
		if n.CPUs[i] <= n.CPUs[i-1] {
			t.Fatalf("CPUs not ascending: %v", n.CPUs)
		}
	}
}

func TestMemAvailable(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		err  bool
	}{
		{"MemAvailable:   1048576 kB\n", 1, false},
		{"MemAvailable:   1101005 kB\n", 1.1, false}, // 1.0500... GiB rounds up
		{"MemAvailable:   0 kB\n", 0, false},
		{"MemAvailable:   12 MB\n", 0, true},
		{"MemAvailable:   x kB\n", 0, true},
		{"", 0, true},
	} {
		got, err := memAvailableGB([]byte(c.in))
		if (err != nil) != c.err || got != c.want {
			t.Errorf("memAvailableGB(%q) = %g, %v; want %g (error %v)", c.in, got, err, c.want, c.err)
		}
	}
}

const nvidiaSMI = `GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0b1c)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-1d2e)
  MIG 3g.20gb     Device  0: (UUID: MIG-aaaa)
  MIG 3g.20gb     Device  1: (UUID: MIG-bbbb)
GPU 2: NVIDIA A100-SXM4-40GB (UUID: GPU-2f3a)
GPU 3: NVIDIA A100-SXM4-40GB (UUID: GPU-3b4c)
`

const rocmSMI = `

============================ ROCm System Management Interface ============================
=========================================== ID ===========================================
GPU[0]		: Device Name: 		Aldebaran/MI200 [Instinct MI250X/MI250]
GPU[0]		: Device ID: 		0x740c
GPU[1]		: Device Name: 		Aldebaran/MI200 [Instinct MI250X/MI250]
GPU[1]		: Device ID: 		0x740c
GPU[2]		: Device Name: 		Aldebaran/MI200 [Instinct MI250X/MI250]
GPU[2]		: Device ID: 		0x740c
==========================================================================================
================================== End of ROCm SMI Log ===================================
`

func TestGPUs(t *testing.T) {
	notFound := func(execx.Call) (execx.Result, error) { return execx.Result{}, exec.ErrNotFound }
	only := func(name, out string) func(execx.Call) (execx.Result, error) {
		return func(c execx.Call) (execx.Result, error) {
			if c.Name != name {
				return execx.Result{}, exec.ErrNotFound
			}
			return execx.Result{Stdout: out}, nil
		}
	}
	tests := []struct {
		name    string
		respond func(execx.Call) (execx.Result, error)
		visible string
		want    int
	}{
		{"nvidia-smi", only("nvidia-smi", nvidiaSMI), "0", 4},
		{"rocm-smi", only("rocm-smi", rocmSMI), "", 3},
		{"nvidia-smi fails", func(c execx.Call) (execx.Result, error) {
			if c.Name == "nvidia-smi" {
				return execx.Result{ExitCode: 9, Stdout: "NVIDIA-SMI has failed"}, nil
			}
			return execx.Result{}, exec.ErrNotFound
		}, "0,1", 2},
		{"timeout", func(execx.Call) (execx.Result, error) { return execx.Result{}, context.DeadlineExceeded }, "", 0},
		{"inherited CUDA_VISIBLE_DEVICES", notFound, "0,1,2", 3},
		{"CUDA_VISIBLE_DEVICES with UUIDs", notFound, "GPU-0b1c,GPU-1d2e", 2},
		{"CUDA_VISIBLE_DEVICES stops at an invalid entry", notFound, "0,-1,2", 1},
		{"NoDevFiles", notFound, "NoDevFiles", 0},
		{"nothing", notFound, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &execx.Fake{Respond: tt.respond}
			getenv := func(k string) string {
				if k == "CUDA_VISIBLE_DEVICES" {
					return tt.visible
				}
				return ""
			}
			if got := gpus(context.Background(), f, getenv); got != tt.want {
				t.Errorf("gpus() = %d, want %d (calls %v)", got, tt.want, f.Calls)
			}
		})
	}
}

// TestGPUsReal runs the real commands; it only checks that nothing breaks.
func TestGPUsReal(t *testing.T) {
	testenv.Integration(t) // runs nvidia-smi and rocm-smi when present
	if n := GPUs(); n < 0 {
		t.Errorf("GPUs() = %d", n)
	}
}
