package detect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/htex/htex/pinning"
)

// Vendors returns the accelerator vendors whose devices the node has, looked
// up under root ("/" on a real node; tests pass a fake tree). It only stats
// and reads links; it runs nothing, and a path it cannot read counts as
// absent. pinning.ResolveVendor decides what the result means.
//
//   - nvidia: a GPU device file /dev/nvidia<N>, which the NVIDIA driver
//     creates for each GPU (nvidia-modprobe(1): "create NVIDIA character
//     device files"), or, where the files are made only on first use, a GPU
//     directory under /proc/driver/nvidia/gpus, which the loaded kernel
//     module lists (NVIDIA driver README, "Using the /proc File System
//     Interface").
//   - amd: /dev/kfd, "the main compute interface, shared by all GPUs" of
//     ROCm (https://rocm.docs.amd.com/projects/install-on-linux/en/latest/how-to/docker.html,
//     "Accessing GPUs in containers").
//   - intel: a render node /dev/dri/renderD<N> whose kernel driver, the link
//     /sys/class/drm/renderD<N>/device/driver, is i915 or xe: the two DRM
//     drivers Intel's Level Zero GPU runtime accepts (intel/compute-runtime,
//     shared/source/os_interface/linux/xe/drm_version_xe.cpp:
//     isDrmSupported is `"i915" == drmVersion || "xe" == drmVersion`).
//     Render nodes of other drivers (amdgpu, nvidia-drm) are not Intel's.
func Vendors(root string) []string {
	var found []string
	if hasNVIDIA(root) {
		found = append(found, pinning.VendorNVIDIA)
	}
	if exists(filepath.Join(root, "dev", "kfd")) {
		found = append(found, pinning.VendorAMD)
	}
	if hasIntel(root) {
		found = append(found, pinning.VendorIntel)
	}
	return found
}

func hasNVIDIA(root string) bool {
	entries, _ := os.ReadDir(filepath.Join(root, "dev"))
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), "nvidia"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			return true
		}
	}
	gpus, _ := os.ReadDir(filepath.Join(root, "proc", "driver", "nvidia", "gpus"))
	return len(gpus) > 0
}

// intelDrivers are the kernel drivers of Intel GPUs that Level Zero runs on.
var intelDrivers = []string{"i915", "xe"}

func hasIntel(root string) bool {
	entries, _ := os.ReadDir(filepath.Join(root, "dev", "dri"))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "renderD") {
			continue
		}
		link, err := os.Readlink(filepath.Join(root, "sys", "class", "drm", e.Name(), "device", "driver"))
		if err == nil && slices.Contains(intelDrivers, filepath.Base(link)) {
			return true
		}
	}
	return false
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
