package detect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeTree builds a node's /dev, /sys and /proc under a temporary root:
// "dev/nvidia0" is a file, "link:A->B" a symbolic link A pointing at B,
// and a path ending in "/" a directory.
func fakeTree(t *testing.T, entries []string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		if spec, ok := strings.CutPrefix(e, "link:"); ok {
			from, to, _ := strings.Cut(spec, "->")
			p := filepath.Join(root, from)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(to, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(root, e)
		if strings.HasSuffix(e, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
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
	i915Link  = "link:sys/class/drm/renderD128/device/driver->../../../../bus/pci/drivers/i915"
	xeLink    = "link:sys/class/drm/renderD129/device/driver->../../../../bus/pci/drivers/xe"
	amdgpu    = "link:sys/class/drm/renderD128/device/driver->../../../../bus/pci/drivers/amdgpu"
	nvidiaDRM = "link:sys/class/drm/renderD128/device/driver->../../../../bus/pci/drivers/nvidia"
)

func TestVendors(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    []string
	}{
		{"empty node", nil, nil},
		{"CPU node with /dev", []string{"dev/null", "dev/tty0", "dev/dri/"}, nil},
		{"nvidia", []string{"dev/nvidia0", "dev/nvidia1", "dev/nvidiactl", "dev/nvidia-uvm"}, []string{"nvidia"}},
		// What an H100 node (a Firecracker VM) showed on 2026-11-26: the GPU's
		// device file, the driver's control files, the GPU under /proc, and
		// no /dev/dri or /dev/kfd.
		{"H100 node as seen", []string{"dev/nvidia0", "dev/nvidiactl", "dev/nvidia-uvm", "dev/nvidia-uvm-tools",
			"dev/nvidia-caps/", "proc/driver/nvidia/gpus/0000:00:06.0/"}, []string{"nvidia"}},
		{"nvidia control files only", []string{"dev/nvidiactl", "dev/nvidia-uvm", "dev/nvidia-caps/"}, nil},
		{"nvidia module without device files", []string{"proc/driver/nvidia/gpus/0000:03:00.0/"}, []string{"nvidia"}},
		{"nvidia module, no GPU", []string{"proc/driver/nvidia/gpus/"}, nil},
		{"nvidia with its DRM render node", []string{"dev/nvidia0", "dev/dri/renderD128", nvidiaDRM}, []string{"nvidia"}},
		{"amd", []string{"dev/kfd", "dev/dri/renderD128", "dev/dri/renderD129", amdgpu}, []string{"amd"}},
		{"intel i915", []string{"dev/dri/card0", "dev/dri/renderD128", i915Link}, []string{"intel"}},
		{"intel xe", []string{"dev/dri/renderD129", xeLink}, []string{"intel"}},
		{"render node of another driver", []string{"dev/dri/renderD128", amdgpu}, nil},
		{"render node without sysfs", []string{"dev/dri/renderD128"}, nil},
		{"sysfs without render node", []string{i915Link}, nil},
		{"nvidia and amd", []string{"dev/nvidia0", "dev/kfd"}, []string{"nvidia", "amd"}},
		{"nvidia and intel", []string{"dev/nvidia3", "dev/dri/renderD128", i915Link}, []string{"nvidia", "intel"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeTree(t, tt.entries)
			if got := Vendors(root); !slices.Equal(got, tt.want) {
				t.Errorf("Vendors() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestVendorsMissingRoot: a root that does not exist is a node without GPUs.
func TestVendorsMissingRoot(t *testing.T) {
	if got := Vendors(filepath.Join(t.TempDir(), "absent")); got != nil {
		t.Errorf("Vendors(absent) = %v", got)
	}
}
