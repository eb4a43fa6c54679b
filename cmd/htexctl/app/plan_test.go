package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestMain points plan's device lookup at an empty tree, so that the
// output of a plan with accelerator_vendor auto does not depend on the GPUs
// of the machine the tests run on; TestPlanVendor builds trees of its own.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "htex-plan-dev")
	if err != nil {
		panic(err)
	}
	devRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runPlanCmd runs `htexctl plan args...` in-process and returns stdout and
// the error the command returned (the exit handler is disabled so that an
// error does not end the test binary).
func runPlanCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := New()
	a.Writer, a.ErrWriter = &out, &errOut
	a.ExitErrHandler = func(*cli.Context, error) {}
	err := a.Run(append([]string{"htexctl", "plan"}, args...))
	return out.String(), err
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "site.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPlanTable(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"block", []string{"--cpus", "0-3", "--max-workers-per-node", "2", "--cpu-affinity", "block"}, `
node:    4 CPUs (0-3), memory not used, 0 GPUs [--cpus]
slots:   2, limited by max_workers_per_node
bounds:  max_workers_per_node=2 allows 2; cores_per_worker=1 (4 CPUs) allows 4
pinning: block
sizes:   a slot holds 2 CPUs; the largest task a pool takes: --cores 4 (all 2 slots)

SLOT  CPUS  NCPU  ACCELERATOR
0     0-1   2     -
1     2-3   2     -
`},
		{"leftover and tie", []string{"--cores", "10", "--mem-gb", "64", "--cores-per-worker", "3", "--mem-per-worker", "21", "--cpu-affinity", "block-reverse"}, `
node:    10 CPUs (0-9), 64 GB memory, 0 GPUs [--cores, --mem-gb]
slots:   3, limited by cores_per_worker (tied with mem_per_worker)
bounds:  cores_per_worker=3 (10 CPUs) allows 3; mem_per_worker=21 (64 GB) allows 3
pinning: block-reverse
sizes:   a slot holds 3 CPUs, 21G; the largest task a pool takes: --cores 9 --mem 63G (all 3 slots)
idle:    1 CPU in no slot: 9

SLOT  CPUS  NCPU  ACCELERATOR
0     6-8   3     -
1     3-5   3     -
2     0-2   3     -
`},
		{"oversubscribed", []string{"--cpus", "0-11", "--available-accelerators", "6", "--gpus", "4", "--cpu-affinity", "alternating"}, `
node:    12 CPUs (0-11), memory not used, 4 GPUs [--cpus, --gpus]
slots:   6, limited by available_accelerators
bounds:  cores_per_worker=1 (12 CPUs) allows 12; available_accelerators (6 entries) allows 6
pinning: alternating
sizes:   a slot holds 2 CPUs, 1 GPU; the largest task a pool takes: --cores 12 --gpus 4 (all 6 slots)
vendor:  unknown [auto: no GPU device found on this machine]: sets CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK, ZE_ENABLE_PCI_ID_DEVICE_ORDER
gpus:    6 accelerator entries on 4 GPUs (MPS): 2,2,1,1 slots per GPU

SLOT  CPUS  NCPU  ACCELERATOR
0     0,6   2     0
1     1,7   2     0
2     2,8   2     1
3     3,9   2     1
4     4,10  2     2
5     5,11  2     3
`},
		{"list and whole entries", []string{"--cpus", "0-7,16-23", "--cpu-affinity", "list:0-3,16-19:4-7,20-23", "--accelerator", "0,1", "--accelerator", "2,3"}, `
node:    16 CPUs (0-7,16-23), memory not used, 0 GPUs [--cpus]
slots:   2, limited by available_accelerators
bounds:  cores_per_worker=1 (16 CPUs) allows 16; available_accelerators (2 entries) allows 2
pinning: list:0-3,16-19:4-7,20-23
sizes:   a slot holds 8 CPUs, 2 GPUs; the largest task a pool takes: --cores 16 --gpus 4 (all 2 slots)
vendor:  unknown [auto: no GPU device found on this machine]: sets CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK, ZE_ENABLE_PCI_ID_DEVICE_ORDER

SLOT  CPUS       NCPU  ACCELERATOR
0     0-3,16-19  8     0,1
1     4-7,20-23  8     2,3
`},
		{"none", []string{"--cores", "3"}, `
node:    3 CPUs (0-2), memory not used, 0 GPUs [--cores]
slots:   3, limited by cores_per_worker
bounds:  cores_per_worker=1 (3 CPUs) allows 3
pinning: none
sizes:   a slot holds 1 CPU; the largest task a pool takes: --cores 3 (all 3 slots)

SLOT  CPUS  NCPU  ACCELERATOR
0     -     -     -
1     -     -     -
2     -     -     -
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runPlanCmd(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimPrefix(tt.want, "\n"); got != want {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestPlanConfigAndOverrides(t *testing.T) {
	path := writeConfig(t, `
[executor]
max_workers_per_node = 4
cores_per_worker = 2
cpu_affinity = "block"
available_accelerators = 8
gpus_per_node = 2
`)
	out, err := runPlanCmd(t, "--config", path, "--cpus", "0-15", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Slots     int    `json:"slots"`
		LimitedBy string `json:"limited_by"`
		Node      struct {
			CPUs []int `json:"cpus"`
			GPUs int   `json:"gpus"`
		} `json:"node"`
		Workers []struct {
			Rank        int               `json:"rank"`
			CPUs        []int             `json:"cpus"`
			Accelerator string            `json:"accelerator"`
			Env         map[string]string `json:"env"`
		} `json:"workers"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if got.Slots != 4 || got.LimitedBy != "max_workers_per_node" || got.Node.GPUs != 2 || len(got.Node.CPUs) != 16 {
		t.Fatalf("got %+v", got)
	}
	for i, w := range got.Workers {
		wantGPU := []string{"0", "0", "1", "1"}[i]
		if w.Rank != i || !reflect.DeepEqual(w.CPUs, []int{4 * i, 4*i + 1, 4*i + 2, 4*i + 3}) ||
			w.Accelerator != wantGPU || w.Env["CUDA_VISIBLE_DEVICES"] != wantGPU || w.Env["OMP_NUM_THREADS"] != "4" {
			t.Errorf("worker %d = %+v", i, w)
		}
	}

	// Flags override the config; --available-accelerators 0 removes them.
	out, err = runPlanCmd(t, "--config", path, "--cpus", "0-15", "--max-workers-per-node", "0",
		"--cpu-affinity", "none", "--available-accelerators", "0", "--gpus", "0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "slots:   8, limited by cores_per_worker\n") || !strings.Contains(out, "pinning: none\n") {
		t.Errorf("overrides not applied:\n%s", out)
	}
}

func TestPlanJSON(t *testing.T) {
	out, err := runPlanCmd(t, "--cpus", "4,5,6,7", "--max-workers-per-node", "2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"slots":      2.0,
		"limited_by": "max_workers_per_node",
		"node":       map[string]any{"cpus": []any{4.0, 5.0, 6.0, 7.0}, "memory_gb": 0.0, "gpus": 0.0},
		// unpinned: the node's 4 CPUs shared by 2 slots
		"slot":         map[string]any{"cpus": 2.0, "gpus": 0.0, "mem_bytes": 0.0},
		"largest_task": map[string]any{"cpus": 4.0, "gpus": 0.0, "mem_bytes": 0.0},
		"workers": []any{
			map[string]any{"rank": 0.0, "cpus": nil, "accelerator": "", "env": map[string]any{}},
			map[string]any{"rank": 1.0, "cpus": nil, "accelerator": "", "env": map[string]any{}},
		},
	}
	if !reflect.DeepEqual(raw, want) {
		t.Errorf("JSON = %v\nwant %v", raw, want)
	}

	out, err = runPlanCmd(t, "--cpus", "0-3", "--cpu-affinity", "alternating", "--max-workers-per-node", "2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Workers []struct {
			CPUs []int             `json:"cpus"`
			Env  map[string]string `json:"env"`
		} `json:"workers"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Workers[1].CPUs, []int{1, 3}) || got.Workers[1].Env["KMP_AFFINITY"] != "explicit,proclist=[1,3]" {
		t.Errorf("worker 1 = %+v", got.Workers[1])
	}
}

func TestPlanErrors(t *testing.T) {
	bad := writeConfig(t, "[executor]\ncores_per_worker = -1\nretries = -2\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"list rank count", []string{"--cpus", "0-7", "--max-workers-per-node", "3", "--cpu-affinity", "list:0:1"},
			`htexctl: cpu_affinity "list:0:1": 2 ranks for 3 workers`},
		{"more workers than cores", []string{"--cpus", "0-3", "--cores-per-worker", "0.5", "--cpu-affinity", "block"},
			`htexctl: cpu_affinity "block": more workers than cores: 8 workers on 4 CPUs`},
		{"zero slots", []string{"--cpus", "0-3", "--cores-per-worker", "8"},
			`htexctl: cores_per_worker 8: 0 slots on a node with 4 CPUs`},
		{"zero slots from memory", []string{"--cpus", "0-3", "--mem-gb", "8", "--mem-per-worker", "16"},
			`htexctl: mem_per_worker 16: 0 slots in 8 GB of memory`},
		{"unknown affinity", []string{"--cpus", "0-3", "--cpu-affinity", "scatter"},
			`htexctl: cpu_affinity "scatter": want none, block, block-reverse, alternating or a list such as list:0-3:4-7`},
		{"shared CPU", []string{"--cpus", "0-3", "--max-workers-per-node", "2", "--cpu-affinity", "list:0-2:2-3"},
			`htexctl: cpu_affinity "list:0-2:2-3": CPU 2 is in rank 0 and rank 1 (set allow_shared_cpus to allow this)`},
		{"bad cpus", []string{"--cpus", "0-3,x"},
			`htexctl: plan: --cpus "0-3,x": item "x": want a CPU id or a range a-b`},
		{"cores and cpus", []string{"--cpus", "0-3", "--cores", "4"},
			`htexctl: plan: give --cores or --cpus, not both`},
		{"zero cores", []string{"--cores", "0"},
			`htexctl: plan: --cores 0: want a number of CPUs from 1 to 65536`},
		{"negative memory", []string{"--cores", "4", "--mem-gb", "-1"},
			`htexctl: plan: --mem-gb -1: want a number of GB >= 0`},
		{"negative gpus", []string{"--cores", "4", "--gpus", "-1"},
			`htexctl: plan: --gpus -1: must be in [0, 1024]`},
		{"too many gpus", []string{"--cores", "4", "--gpus", "100000000000"},
			`htexctl: plan: --gpus 100000000000: must be in [0, 1024]`},
		{"both accelerator flags", []string{"--cores", "4", "--available-accelerators", "2", "--accelerator", "0"},
			`htexctl: plan: give --available-accelerators or --accelerator, not both`},
		{"negative accelerators", []string{"--cores", "4", "--available-accelerators", "-1"},
			`htexctl: plan: --available-accelerators -1: must be in [0, 1024]`},
		// Used to take all memory making a trillion entries.
		{"too many accelerators", []string{"--cores", "4", "--available-accelerators", "1000000000000"},
			`htexctl: plan: --available-accelerators 1000000000000: must be in [0, 1024]`},
		{"bad cores per worker", []string{"--cores", "4", "--cores-per-worker", "0"},
			`htexctl: cores_per_worker 0: must be a finite number > 0`},
		{"argument", []string{"--cores", "4", "extra"},
			`htexctl: plan: unexpected argument "extra"`},
		{"bad vendor", []string{"--cores", "4", "--available-accelerators", "2", "--accelerator-vendor", "rocm"},
			`htexctl: plan: --accelerator-vendor "rocm": want auto, nvidia, amd or intel (did you mean "amd"?)`},
		{"bad vendor without accelerators", []string{"--cores", "4", "--accelerator-vendor", "nvida"},
			`htexctl: plan: --accelerator-vendor "nvida": want auto, nvidia, amd or intel (did you mean "nvidia"?)`},
		{"bad config", []string{"--config", bad, "--cores", "4"},
			`htexctl: ` + bad + `: executor.cores_per_worker -1: must be > 0 (leave it out for 1); executor.retries -2: must be in [0, 10000]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runPlanCmd(t, tt.args...)
			var ec cli.ExitCoder
			if !errors.As(err, &ec) {
				t.Fatalf("err = %v, want an exit error; stdout %q", err, out)
			}
			if ec.ExitCode() != ExitUsage || ec.Error() != tt.want {
				t.Errorf("exit %d %q\nwant exit 2 %q", ec.ExitCode(), ec.Error(), tt.want)
			}
			if strings.Contains(ec.Error(), "\n") {
				t.Errorf("message has several lines: %q", ec.Error())
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
}

// TestPlanOnLoginNode: a site's plan that fails on the machine plan runs
// on says so and how to describe the compute node.
func TestPlanOnLoginNode(t *testing.T) {
	t.Setenv("HTEX_CORES", "2")
	t.Setenv("HTEX_MEMORY_GB", "4")
	_, err := runPlanCmd(t, "--cpu-affinity", "list:0:1:2:3") // a 4-CPU node's list, as frontier.toml's
	want := `htexctl: cpu_affinity "list:0:1:2:3": 4 ranks for 2 workers; this plan is for this machine's 2 CPUs: ` +
		`describe the compute node with --cpus or --cores, --mem-gb and --gpus (the site files say theirs in a comment)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// TestPlanDetected runs plan without a node description; HTEX_CORES and
// HTEX_MEMORY_GB make the detected node known.
func TestPlanDetected(t *testing.T) {
	t.Setenv("HTEX_CORES", "6")
	t.Setenv("HTEX_MEMORY_GB", "12")
	out, err := runPlanCmd(t, "--mem-per-worker", "4")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "node:    6 CPUs") || !strings.Contains(out, "12 GB memory") ||
		!strings.Contains(out, "[detected]") || !strings.Contains(out, "slots:   3, limited by mem_per_worker") {
		t.Errorf("output:\n%s", out)
	}
	t.Setenv("HTEX_CORES", "six")
	_, err = runPlanCmd(t)
	var ec cli.ExitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != ExitUsage ||
		ec.Error() != `htexctl: plan: HTEX_CORES "six": want a positive number of CPUs (or describe the node with --cpus or --cores, and --mem-gb)` {
		t.Errorf("err = %v", err)
	}
}

// TestPlanVendor: the vendor line and the JSON for explicit vendors, and for
// auto on fake device trees.
func TestPlanVendor(t *testing.T) {
	tree := func(t *testing.T, files ...string) string {
		root := t.TempDir()
		for _, f := range files {
			p := filepath.Join(root, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	const (
		amdLine     = "amd [%s]: sets ROCR_VISIBLE_DEVICES; removes CUDA_VISIBLE_DEVICES, GPU_DEVICE_ORDINAL, HIP_VISIBLE_DEVICES"
		unknownLine = "unknown [%s]: sets CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK, ZE_ENABLE_PCI_ID_DEVICE_ORDER"
	)
	tests := []struct {
		name     string
		files    []string
		args     []string
		line     string // the vendor: line, "" = none
		jsonName string
		env      map[string]string // slot 1's device variables
		unset    []string
	}{
		{"explicit nvidia", nil, []string{"--accelerator-vendor", "nvidia"},
			"nvidia [--accelerator-vendor]: sets CUDA_VISIBLE_DEVICES", "nvidia",
			map[string]string{"CUDA_VISIBLE_DEVICES": "1"}, nil},
		{"explicit amd over nvidia devices", []string{"dev/nvidia0"}, []string{"--accelerator-vendor", "amd"},
			fmt.Sprintf(amdLine, "--accelerator-vendor"), "amd",
			map[string]string{"ROCR_VISIBLE_DEVICES": "1"}, []string{"CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "HIP_VISIBLE_DEVICES"}},
		{"explicit intel", nil, []string{"--accelerator-vendor", "intel"},
			"intel [--accelerator-vendor]: sets ZE_AFFINITY_MASK, ZE_ENABLE_PCI_ID_DEVICE_ORDER", "intel",
			map[string]string{"ZE_AFFINITY_MASK": "1", "ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}, nil},
		{"auto on an AMD node", []string{"dev/kfd"}, nil,
			fmt.Sprintf(amdLine, "auto: amd devices found on this machine"), "amd",
			map[string]string{"ROCR_VISIBLE_DEVICES": "1"}, []string{"CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "HIP_VISIBLE_DEVICES"}},
		{"auto on an NVIDIA node", []string{"dev/nvidia0", "dev/nvidia1", "dev/nvidiactl"}, []string{"--accelerator-vendor", "auto"},
			"nvidia [auto: nvidia devices found on this machine]: sets CUDA_VISIBLE_DEVICES", "nvidia",
			map[string]string{"CUDA_VISIBLE_DEVICES": "1"}, nil},
		{"auto on a mixed node", []string{"dev/nvidia0", "dev/kfd"}, nil,
			fmt.Sprintf(unknownLine, "auto: devices of amd and nvidia found on this machine"), "unknown",
			map[string]string{"CUDA_VISIBLE_DEVICES": "1", "ROCR_VISIBLE_DEVICES": "1", "ZE_AFFINITY_MASK": "1", "ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}, nil},
		{"auto without GPUs", nil, nil,
			fmt.Sprintf(unknownLine, "auto: no GPU device found on this machine"), "unknown",
			map[string]string{"CUDA_VISIBLE_DEVICES": "1", "ROCR_VISIBLE_DEVICES": "1", "ZE_AFFINITY_MASK": "1", "ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := devRoot
			devRoot = tree(t, tt.files...)
			t.Cleanup(func() { devRoot = old })
			args := append([]string{"--cores", "4", "--available-accelerators", "2"}, tt.args...)
			out, err := runPlanCmd(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "\nvendor:  "+tt.line+"\n") {
				t.Errorf("no line %q in:\n%s", "vendor:  "+tt.line, out)
			}
			out, err = runPlanCmd(t, append(args, "--json")...)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Vendor  string `json:"accelerator_vendor"`
				Workers []struct {
					Env   map[string]string `json:"env"`
					Unset []string          `json:"unset"`
				} `json:"workers"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			if got.Vendor != tt.jsonName || !reflect.DeepEqual(got.Workers[1].Env, tt.env) || !reflect.DeepEqual(got.Workers[1].Unset, tt.unset) {
				t.Errorf("JSON vendor %q, slot 1 env %v unset %v; want %q, %v, %v", got.Vendor, got.Workers[1].Env, got.Workers[1].Unset, tt.jsonName, tt.env, tt.unset)
			}
		})
	}

	// Without accelerator entries the vendor is neither looked up nor shown.
	out, err := runPlanCmd(t, "--cores", "2", "--accelerator-vendor", "amd")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "vendor:") {
		t.Errorf("vendor shown without accelerators:\n%s", out)
	}

	// The config's accelerator_vendor is used, and the flag overrides it.
	path := writeConfig(t, "[executor]\navailable_accelerators = 2\naccelerator_vendor = \"amd\"\n")
	out, err = runPlanCmd(t, "--config", path, "--cores", "2")
	if err != nil || !strings.Contains(out, "vendor:  "+fmt.Sprintf(amdLine, "accelerator_vendor")+"\n") {
		t.Errorf("config vendor: %v\n%s", err, out)
	}
	out, err = runPlanCmd(t, "--config", path, "--cores", "2", "--accelerator-vendor", "nvidia")
	if err != nil || !strings.Contains(out, "vendor:  nvidia [--accelerator-vendor]: sets CUDA_VISIBLE_DEVICES\n") {
		t.Errorf("flag over config vendor: %v\n%s", err, out)
	}
}
