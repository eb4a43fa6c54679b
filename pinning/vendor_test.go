package pinning

import (
	"maps"
	"slices"
	"testing"
)

func TestResolveVendor(t *testing.T) {
	tests := []struct {
		setting   string
		found     []string
		want, why string
		wantErr   string
	}{
		{"nvidia", nil, "nvidia", "accelerator_vendor", ""},
		{"amd", []string{"nvidia"}, "amd", "accelerator_vendor", ""}, // explicit beats detection
		{"intel", nil, "intel", "accelerator_vendor", ""},
		{"auto", nil, "", "auto: no GPU device found", ""},
		{"auto", []string{"nvidia"}, "nvidia", "auto: nvidia devices found", ""},
		{"auto", []string{"amd"}, "amd", "auto: amd devices found", ""},
		{"auto", []string{"intel", "intel"}, "intel", "auto: intel devices found", ""},
		{"auto", []string{"nvidia", "intel"}, "", "auto: devices of intel and nvidia found", ""},
		{"", []string{"amd"}, "amd", "auto: amd devices found", ""}, // an older connection file: auto
		{"rocm", nil, "", "", `accelerator_vendor "rocm": want auto, nvidia, amd or intel`},
		{"NVIDIA", nil, "", "", `accelerator_vendor "NVIDIA": want auto, nvidia, amd or intel`},
	}
	for _, tt := range tests {
		got, why, err := ResolveVendor(tt.setting, tt.found)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ResolveVendor(%q, %v) error %v, want %s", tt.setting, tt.found, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want || why != tt.why {
			t.Errorf("ResolveVendor(%q, %v) = %q, %q, %v; want %q, %q", tt.setting, tt.found, got, why, err, tt.want, tt.why)
		}
	}
}

func TestAcceleratorEnv(t *testing.T) {
	tests := []struct {
		vendor string
		dev    string
		set    map[string]string
		unset  []string
	}{
		{"nvidia", "3", map[string]string{"CUDA_VISIBLE_DEVICES": "3"}, nil},
		{"nvidia", "0,1", map[string]string{"CUDA_VISIBLE_DEVICES": "0,1"}, nil},
		{"amd", "3", map[string]string{"ROCR_VISIBLE_DEVICES": "3"},
			[]string{"CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "HIP_VISIBLE_DEVICES"}},
		{"intel", "2.1", map[string]string{"ZE_AFFINITY_MASK": "2.1", "ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}, nil},
		{"", "3", map[string]string{"CUDA_VISIBLE_DEVICES": "3", "ROCR_VISIBLE_DEVICES": "3", "ZE_AFFINITY_MASK": "3",
			"ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}, nil},
	}
	for _, tt := range tests {
		set, unset := AcceleratorEnv(tt.vendor, tt.dev)
		if !maps.Equal(set, tt.set) || !slices.Equal(unset, tt.unset) {
			t.Errorf("AcceleratorEnv(%q, %q) = %v, %v; want %v, %v", tt.vendor, tt.dev, set, unset, tt.set, tt.unset)
		}
		for _, u := range unset {
			if _, ok := set[u]; ok {
				t.Errorf("AcceleratorEnv(%q): %s both set and unset", tt.vendor, u)
			}
		}
		if !slices.IsSorted(unset) {
			t.Errorf("AcceleratorEnv(%q): unset %v not sorted", tt.vendor, unset)
		}
	}
}

// TestPlanVendor checks that the vendor chooses the variables while the MPS
// spreading (6 entries on 4 GPUs: 2,2,1,1) stays the same for every vendor.
func TestPlanVendor(t *testing.T) {
	wantGPU := []string{"0", "0", "1", "1", "2", "3"}
	for _, tt := range []struct {
		vendor string
		vars   []string
		unset  []string
	}{
		{"nvidia", []string{"CUDA_VISIBLE_DEVICES"}, nil},
		{"amd", []string{"ROCR_VISIBLE_DEVICES"}, []string{"CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "HIP_VISIBLE_DEVICES"}},
		{"intel", []string{"ZE_AFFINITY_MASK"}, nil},
		{"", []string{"CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"}, nil},
	} {
		l, err := Plan(Node{CPUs: seq(0, 11)}, Options{CoresPerWorker: 1, CPUAffinity: "block", Accelerators: numbered(6), GPUs: 4, Vendor: tt.vendor})
		if err != nil {
			t.Fatalf("vendor %q: %v", tt.vendor, err)
		}
		if !l.Oversubscribed || len(l.Slots) != 6 {
			t.Fatalf("vendor %q: %d slots, oversubscribed %v", tt.vendor, len(l.Slots), l.Oversubscribed)
		}
		for i, s := range l.Slots {
			if s.Accelerator != wantGPU[i] {
				t.Errorf("vendor %q slot %d: accelerator %q, want %s", tt.vendor, i, s.Accelerator, wantGPU[i])
			}
			var devVars []string
			for _, k := range []string{"CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"} {
				if v, ok := s.Env[k]; ok {
					devVars = append(devVars, k)
					if v != wantGPU[i] {
						t.Errorf("vendor %q slot %d: %s=%q, want %s", tt.vendor, i, k, v, wantGPU[i])
					}
				}
			}
			if !slices.Equal(devVars, tt.vars) || !slices.Equal(s.Unset, tt.unset) {
				t.Errorf("vendor %q slot %d: sets %v, unsets %v; want %v, %v", tt.vendor, i, devVars, s.Unset, tt.vars, tt.unset)
			}
			if s.Env["OMP_NUM_THREADS"] != "2" {
				t.Errorf("vendor %q slot %d: CPU env lost: %v", tt.vendor, i, s.Env)
			}
		}
	}

	// No accelerators: the vendor changes nothing.
	l, err := Plan(Node{CPUs: seq(0, 3)}, Options{CoresPerWorker: 1, Vendor: "amd"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Slots {
		if len(s.Env) != 0 || s.Unset != nil {
			t.Errorf("slot %d without accelerators: env %v unset %v", s.Rank, s.Env, s.Unset)
		}
	}

	for _, v := range []string{"auto", "cuda"} {
		if _, err := Plan(Node{CPUs: seq(0, 3)}, Options{CoresPerWorker: 1, Vendor: v}); err == nil {
			t.Errorf("Plan with vendor %q: no error", v)
		}
	}
}
