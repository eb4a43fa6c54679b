package pinning

import (
	"fmt"
	"slices"
	"strings"
)

// Accelerator vendors, the values of executor.accelerator_vendor. VendorAuto
// is a setting only: the pool resolves it on its node (ResolveVendor) before
// Plan. VendorUnknown is the resolved value when the vendor is not known.
const (
	VendorAuto    = "auto"
	VendorNVIDIA  = "nvidia"
	VendorAMD     = "amd"
	VendorIntel   = "intel"
	VendorUnknown = ""
)

// VendorSettings are the values executor.accelerator_vendor accepts.
var VendorSettings = []string{VendorAuto, VendorNVIDIA, VendorAMD, VendorIntel}

// The device-selection variables a slot's tasks may get.
const (
	EnvCUDAVisible      = "CUDA_VISIBLE_DEVICES"
	EnvROCRVisible      = "ROCR_VISIBLE_DEVICES"
	EnvHIPVisible       = "HIP_VISIBLE_DEVICES"
	EnvGPUDeviceOrdinal = "GPU_DEVICE_ORDINAL"
	EnvZEAffinityMask   = "ZE_AFFINITY_MASK"
	EnvZEPCIOrder       = "ZE_ENABLE_PCI_ID_DEVICE_ORDER"
)

// ResolveVendor turns the accelerator_vendor setting into the vendor whose
// variable the slots get. An explicit vendor is kept as it is. For auto,
// found lists the vendors whose devices the node has (pinning/detect reads
// them): exactly one is that vendor; none, or several (a node with GPUs of
// two vendors), is VendorUnknown, and the slots get every vendor's variable
// as Parsl does. why says how the vendor was chosen, for logs and plan.
func ResolveVendor(setting string, found []string) (vendor, why string, err error) {
	switch setting {
	case VendorNVIDIA, VendorAMD, VendorIntel:
		return setting, "accelerator_vendor", nil
	case VendorAuto, "":
	default:
		return "", "", fmt.Errorf("accelerator_vendor %q: want %s", setting, VendorChoices())
	}
	found = slices.Compact(slices.Sorted(slices.Values(found)))
	switch len(found) {
	case 0:
		return VendorUnknown, "auto: no GPU device found", nil
	case 1:
		return found[0], "auto: " + found[0] + " devices found", nil
	default:
		return VendorUnknown, "auto: devices of " + strings.Join(found, " and ") + " found", nil
	}
}

// VendorChoices writes the accepted settings: "auto, nvidia, amd or intel".
func VendorChoices() string {
	n := len(VendorSettings)
	return strings.Join(VendorSettings[:n-1], ", ") + " or " + VendorSettings[n-1]
}

// AcceleratorEnv is the device selection of a slot owning dev on a node of
// the given (resolved) vendor: the variables its tasks get, and those they
// must not inherit from the pool's environment.
//
//   - nvidia: CUDA_VISIBLE_DEVICES.
//   - amd: ROCR_VISIBLE_DEVICES only, and CUDA_VISIBLE_DEVICES,
//     HIP_VISIBLE_DEVICES and GPU_DEVICE_ORDINAL are removed. HIP and ROCclr
//     apply those on top of ROCR_VISIBLE_DEVICES, numbering the devices ROCR
//     leaves visible from 0, so ROCR=3 with CUDA=3 leaves no device (Parsl
//     issue https://github.com/Parsl/parsl/issues/3858), and a node-wide list
//     that Slurm exported (it sets all four by default, gres.conf(5), Flags)
//     points past the slot's one device. ROCm recommends ROCR_VISIBLE_DEVICES
//     on Linux: https://rocm.docs.amd.com/en/latest/conceptual/gpu-isolation.html
//     and https://rocm.docs.amd.com/projects/HIP/en/latest/reference/env_variables.html.
//   - intel: ZE_AFFINITY_MASK (a device "2" or a tile "2.1") and
//     ZE_ENABLE_PCI_ID_DEVICE_ORDER=1, so that device numbers follow the
//     PCI order as nvidia-smi's and rocm-smi's do.
//   - unknown: all three variables and ZE_ENABLE_PCI_ID_DEVICE_ORDER=1, as
//     Parsl sets them.
//
// The slot's own variables win over inherited ones in any case; Unset only
// lists those that must go even though the slot does not set them.
func AcceleratorEnv(vendor, dev string) (set map[string]string, unset []string) {
	switch vendor {
	case VendorNVIDIA:
		return map[string]string{EnvCUDAVisible: dev}, nil
	case VendorAMD:
		return map[string]string{EnvROCRVisible: dev}, []string{EnvCUDAVisible, EnvGPUDeviceOrdinal, EnvHIPVisible}
	case VendorIntel:
		return map[string]string{EnvZEAffinityMask: dev, EnvZEPCIOrder: "1"}, nil
	default:
		return map[string]string{EnvCUDAVisible: dev, EnvROCRVisible: dev, EnvZEAffinityMask: dev, EnvZEPCIOrder: "1"}, nil
	}
}

// checkVendor accepts a resolved vendor.
func checkVendor(v string) error {
	switch v {
	case VendorUnknown, VendorNVIDIA, VendorAMD, VendorIntel:
		return nil
	case VendorAuto:
		return fmt.Errorf("accelerator_vendor %q: resolve it on the node first (ResolveVendor)", v)
	default:
		return fmt.Errorf("accelerator_vendor %q: want %s", v, VendorChoices())
	}
}
