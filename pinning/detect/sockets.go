package detect

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/htex/htex/pinning"
)

// SlotSockets returns the socket (physical package) of each slot: that of
// its first CPU, from /sys/devices/system/cpu/cpuN/topology/
// physical_package_id (Linux sysfs, Documentation/ABI/stable/
// sysfs-devices-system-cpu), under root ("/" on a node). nil when the
// slots are not pinned or a CPU's socket cannot be read: the pool then
// places tasks of a size as if the node had one socket.
func SlotSockets(root string, slots []pinning.Slot) []int {
	out := make([]int, len(slots))
	for i, s := range slots {
		if len(s.CPUs) == 0 {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(root, "sys/devices/system/cpu", "cpu"+strconv.Itoa(s.CPUs[0]), "topology/physical_package_id"))
		if err != nil {
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil
		}
		out[i] = n
	}
	return out
}
