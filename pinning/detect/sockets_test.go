package detect

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/htex/htex/pinning"
)

func TestSlotSockets(t *testing.T) {
	root := t.TempDir()
	for cpu, pkg := range []string{"0", "0", "1\n", "1"} {
		dir := filepath.Join(root, "sys/devices/system/cpu", "cpu"+strconv.Itoa(cpu), "topology")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "physical_package_id"), []byte(pkg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	slots := []pinning.Slot{{CPUs: []int{0, 1}}, {CPUs: []int{2}}, {CPUs: []int{3}}}
	if got := SlotSockets(root, slots); !reflect.DeepEqual(got, []int{0, 1, 1}) {
		t.Errorf("SlotSockets = %v, want [0 1 1]", got)
	}
	if got := SlotSockets(root, []pinning.Slot{{}, {}}); got != nil {
		t.Errorf("unpinned slots: %v, want nil", got)
	}
	if got := SlotSockets(root, []pinning.Slot{{CPUs: []int{9}}}); got != nil {
		t.Errorf("a CPU without sysfs entry: %v, want nil", got)
	}
}
