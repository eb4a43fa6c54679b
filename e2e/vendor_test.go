package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/pinning"
	"github.com/htex/htex/pinning/detect"
)

// deviceVars are the device-selection variables a task may see.
var deviceVars = []string{"CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
	"GPU_DEVICE_ORDINAL", "ZE_AFFINITY_MASK", "ZE_ENABLE_PCI_ID_DEVICE_ORDER"}

// slurmExported is what a pool inherits on a 4-GPU node where Slurm sets
// every vendor's variable for the job (gres.conf(5), Flags, the default).
var slurmExported = map[string]string{"CUDA_VISIBLE_DEVICES": "0,1,2,3", "ROCR_VISIBLE_DEVICES": "0,1,2,3",
	"HIP_VISIBLE_DEVICES": "0,1,2,3", "GPU_DEVICE_ORDINAL": "0,1,2,3", "ZE_AFFINITY_MASK": "0,1,2,3"}

const vendorConfig = `
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
available_accelerators = 2
gpus_per_node = 2
accelerator_vendor = "VENDOR"
heartbeat_period = 1
heartbeat_threshold = 5
[provider]
kind = "local"
`

// TestAcceleratorVendorEnv runs real tasks through a daemon and its pool
// whose environment carries a node-wide device list in every vendor's
// variable, and checks that each slot's task sees exactly what its vendor
// calls for: its own device in the vendor's variable, the variables the
// vendor drops gone, the rest inherited unchanged. With auto the expected
// vendor is what this machine's device files say; plan must agree.
func TestAcceleratorVendorEnv(t *testing.T) {
	testenv.Integration(t)
	var env []string
	for _, k := range deviceVars {
		t.Setenv(k, "") // restored after the test; the daemon gets the values below
		os.Unsetenv(k)
	}
	for k, v := range slurmExported {
		env = append(env, k+"="+v)
	}
	probe := `env | grep -E '^(HTEX_WORKER_RANK|` + strings.Join(deviceVars, "|") + `)=' | sort`

	// What a task of slot r sees, written out for the explicit vendors (the
	// pure decision has its own tables in pinning; this checks the pool
	// applies it); for auto it follows from what this machine has.
	explicit := map[string]func(r string) map[string]string{
		"amd": func(r string) map[string]string {
			return map[string]string{"ROCR_VISIBLE_DEVICES": r, "ZE_AFFINITY_MASK": "0,1,2,3"}
		},
		"nvidia": func(r string) map[string]string {
			return map[string]string{"CUDA_VISIBLE_DEVICES": r, "ROCR_VISIBLE_DEVICES": "0,1,2,3",
				"HIP_VISIBLE_DEVICES": "0,1,2,3", "GPU_DEVICE_ORDINAL": "0,1,2,3", "ZE_AFFINITY_MASK": "0,1,2,3"}
		},
		"intel": func(r string) map[string]string {
			return map[string]string{"ZE_AFFINITY_MASK": r, "ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1", "CUDA_VISIBLE_DEVICES": "0,1,2,3",
				"ROCR_VISIBLE_DEVICES": "0,1,2,3", "HIP_VISIBLE_DEVICES": "0,1,2,3", "GPU_DEVICE_ORDINAL": "0,1,2,3"}
		},
	}

	for _, setting := range []string{"amd", "nvidia", "intel", "auto"} {
		t.Run(setting, func(t *testing.T) {
			vendor, why, err := pinning.ResolveVendor(setting, detect.Vendors("/"))
			if err != nil {
				t.Fatal(err)
			}
			d := testenv.StartDaemonEnv(t, strings.Replace(vendorConfig, "VENDOR", setting, 1), env...)

			// What plan (run with the same environment, on the same
			// machine) promises each slot.
			out, errOut, code := testenv.RunBin(d.Bin, env, "plan", "--json", "--config", d.Config)
			if code != 0 {
				t.Fatalf("plan: exit %d: %s", code, errOut)
			}
			var plan struct {
				Vendor  string `json:"accelerator_vendor"`
				Workers []struct {
					Env   map[string]string `json:"env"`
					Unset []string          `json:"unset"`
				} `json:"workers"`
			}
			if err := json.Unmarshal([]byte(out), &plan); err != nil || len(plan.Workers) != 2 {
				t.Fatalf("plan --json: %v\n%s", err, out)
			}
			if wantName := map[string]string{"": "unknown"}[vendor]; plan.Vendor != vendor && plan.Vendor != wantName {
				t.Fatalf("plan says vendor %q, want %q (%s)", plan.Vendor, vendor, why)
			}

			job := d.Submit("--array", "1-6", "--", "sh", "-c", probe)
			if code := d.WaitJob(job); code != 0 {
				t.Fatalf("wait: exit %d\n%+v", code, d.Results(job))
			}
			ranks := map[int]bool{}
			for _, r := range d.Results(job) {
				got := map[string]string{}
				for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
					k, v, _ := strings.Cut(line, "=")
					got[k] = v
				}
				rank, err := strconv.Atoi(got["HTEX_WORKER_RANK"])
				if err != nil || rank < 0 || rank > 1 {
					t.Fatalf("task %d: HTEX_WORKER_RANK %q\n%s", r.TaskID, got["HTEX_WORKER_RANK"], r.Stdout)
				}
				ranks[rank] = true
				delete(got, "HTEX_WORKER_RANK")

				var want map[string]string
				if f, ok := explicit[setting]; ok {
					want = f(strconv.Itoa(rank))
				} else {
					set, unset := pinning.AcceleratorEnv(vendor, strconv.Itoa(rank))
					want = maps.Clone(slurmExported)
					for _, k := range unset {
						delete(want, k)
					}
					maps.Copy(want, set)
				}
				if !maps.Equal(got, want) {
					t.Errorf("vendor %s (%s), slot %d: task sees %v\nwant %v", setting, why, rank, got, want)
				}

				// plan's env and unset say the same.
				w := plan.Workers[rank]
				fromPlan := maps.Clone(slurmExported)
				for _, k := range w.Unset {
					delete(fromPlan, k)
				}
				for _, k := range deviceVars {
					if v, ok := w.Env[k]; ok {
						fromPlan[k] = v
					}
				}
				if !maps.Equal(got, fromPlan) {
					t.Errorf("vendor %s, slot %d: task sees %v, plan promised %v", setting, rank, got, fromPlan)
				}
			}
			if len(ranks) != 2 {
				t.Errorf("tasks ran on slots %v, want both", ranks)
			}
		})
	}
}
