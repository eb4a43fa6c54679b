package app

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/config"
	"github.com/htex/htex/pinning"
	"github.com/htex/htex/pinning/detect"
	"github.com/htex/htex/wire"
)

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show the slots and pinning a worker pool would use on a node",
		UsageText: "htexctl plan [--config FILE] [--cpus LIST | --cores N] [--mem-gb G] [--gpus G] [--accelerator-vendor V] [option flags] [--json]",
		Description: "plan lays out one node's worker pool without starting anything: how many\n" +
			"slots, which option limited that number, each slot's CPUs, accelerator and\n" +
			"environment. The node is described by --cpus/--cores and --mem-gb, else read\n" +
			"from this machine (HTEX_CORES and HTEX_MEMORY_GB override). Option flags\n" +
			"override the config file. GPUs come from --gpus or executor.gpus_per_node only,\n" +
			"so the output does not depend on the GPUs of the machine plan runs on. With\n" +
			"accelerator entries and accelerator_vendor auto, the vendor (which variable a\n" +
			"slot gets) is detected from this machine's device files, as a pool does on\n" +
			"its node; --accelerator-vendor shows another node's.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "site config `FILE` (default: the built-in local config)"},
			&cli.IntFlag{Name: "cores", Usage: "the node has CPUs 0..`N`-1"},
			&cli.StringFlag{Name: "cpus", Usage: "the node's allowed CPUs, e.g. 0-7,16-23"},
			&cli.Float64Flag{Name: "mem-gb", Usage: "the node's available memory in `GB`"},
			&cli.IntFlag{Name: "gpus", Usage: "physical GPUs on the node (default: executor.gpus_per_node, else 0)"},
			&cli.IntFlag{Name: "max-workers-per-node", Usage: "override executor.max_workers_per_node (0 = unlimited)"},
			&cli.Float64Flag{Name: "cores-per-worker", Usage: "override executor.cores_per_worker"},
			&cli.Float64Flag{Name: "mem-per-worker", Usage: "override executor.mem_per_worker (GB, 0 = no limit)"},
			&cli.StringFlag{Name: "cpu-affinity", Usage: "override executor.cpu_affinity: none, block, block-reverse, alternating or list:..."},
			&cli.IntFlag{Name: "available-accelerators", Usage: "override executor.available_accelerators with the names 0..`N`-1"},
			&cli.GenericFlag{Name: "accelerator", Value: &entryList{}, Usage: "override executor.available_accelerators, one `ENTRY` per use (e.g. --accelerator 0,1 --accelerator 2,3)"},
			&cli.BoolFlag{Name: "allow-shared-cpus", Usage: "override executor.allow_shared_cpus"},
			&cli.StringFlag{Name: "accelerator-vendor", Usage: "override executor.accelerator_vendor: auto, nvidia, amd or intel"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: runPlan,
	}
}

// entryList is a repeatable flag whose values are kept whole (a string slice
// flag would split "0,1" at the comma).
type entryList []string

func (l *entryList) Set(v string) error { *l = append(*l, v); return nil }
func (l *entryList) String() string     { return strings.Join(*l, " ") }

// planNode is the node plan lays out, and where its description came from.
type planNode struct {
	node   pinning.Node
	gpus   int
	source string
	vendor planVendor
	hint   string // the detected CPU mask is smaller than the machine (pinning.LauncherBindHint)
	here   bool   // the CPUs are this machine's (no --cpus or --cores)
}

// planVendor is the accelerator vendor plan resolved, and how.
type planVendor struct {
	name string // nvidia, amd, intel, or "" (unknown)
	why  string
}

// devRoot is where plan looks for the device files that tell the vendor
// with accelerator_vendor auto; tests point it at a fake tree.
var devRoot = "/"

func runPlan(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("plan: unexpected argument %q", c.Args().First())
	}
	cfg := config.Default()
	if path := c.String("config"); path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return usageError("%s", oneLine(err))
		}
	}
	opts, err := planOptions(c, &cfg.Executor)
	if err != nil {
		return err
	}
	pn, err := planNodeFrom(c, &cfg.Executor, opts)
	if err != nil {
		return err
	}
	opts.GPUs = pn.gpus
	if pn.vendor, err = planVendorFrom(c, &cfg.Executor, opts); err != nil {
		return err
	}
	opts.Vendor = pn.vendor.name
	layout, err := pinning.Plan(pn.node, opts)
	if err != nil {
		return usageError("%s", planError(err, pn))
	}
	if c.Bool("json") {
		return writePlanJSON(c.App.Writer, pn, opts, layout)
	}
	return writePlanTable(c.App.Writer, pn, opts, layout)
}

// planError is a failed plan's message, with what may explain it: plan
// ran on this machine's CPUs (a login node is not the compute node a site
// file describes), or the CPU mask is smaller than the machine.
func planError(err error, pn planNode) string {
	msg := err.Error()
	if pn.hint != "" {
		msg += "; " + pn.hint
	}
	if pn.here {
		msg += fmt.Sprintf("; this plan is for this machine's %d CPUs: describe the compute node with --cpus or --cores, --mem-gb and --gpus (the site files say theirs in a comment)",
			len(pn.node.CPUs))
	}
	return msg
}

// planOptions starts from the config and applies the option flags.
func planOptions(c *cli.Context, e *config.Executor) (pinning.Options, error) {
	o := e.PinningOptions()
	if c.IsSet("max-workers-per-node") {
		o.MaxWorkersPerNode = c.Int("max-workers-per-node")
	}
	if c.IsSet("cores-per-worker") {
		o.CoresPerWorker = c.Float64("cores-per-worker")
	}
	if c.IsSet("mem-per-worker") {
		o.MemPerWorker = c.Float64("mem-per-worker")
	}
	if c.IsSet("cpu-affinity") {
		o.CPUAffinity = c.String("cpu-affinity")
	}
	if c.IsSet("allow-shared-cpus") {
		o.AllowSharedCPUs = c.Bool("allow-shared-cpus")
	}
	entries := *c.Generic("accelerator").(*entryList)
	switch {
	case c.IsSet("available-accelerators") && len(entries) > 0:
		return o, usageError("plan: give --available-accelerators or --accelerator, not both")
	case c.IsSet("available-accelerators"):
		n := c.Int("available-accelerators")
		if n < 0 || n > config.MaxAccelerators {
			return o, usageError("plan: --available-accelerators %d: must be in [0, %d]", n, config.MaxAccelerators)
		}
		o.Accelerators = config.NumberedAccelerators(n)
	case len(entries) > 0:
		o.Accelerators = []string(entries)
	}
	return o, nil
}

// planNodeFrom describes the node from the flags, detecting what they leave
// out. Memory is only detected when mem_per_worker needs it, so that a plan
// given --cpus or --cores is the same on every machine.
func planNodeFrom(c *cli.Context, e *config.Executor, o pinning.Options) (planNode, error) {
	var pn planNode
	var from []string
	switch {
	case c.IsSet("cores") && c.IsSet("cpus"):
		return pn, usageError("plan: give --cores or --cpus, not both")
	case c.IsSet("cores"):
		n := c.Int("cores")
		if n < 1 || n > pinning.MaxCPU+1 {
			return pn, usageError("plan: --cores %d: want a number of CPUs from 1 to %d", n, pinning.MaxCPU+1)
		}
		for i := range n {
			pn.node.CPUs = append(pn.node.CPUs, i)
		}
		from = append(from, "--cores")
	case c.IsSet("cpus"):
		cpus, err := pinning.ParseCPUList(c.String("cpus"))
		if err != nil {
			return pn, usageError("plan: --cpus %q: %v", c.String("cpus"), err)
		}
		pn.node.CPUs = cpus
		from = append(from, "--cpus")
	}
	memSet := c.IsSet("mem-gb")
	if memSet {
		gb := c.Float64("mem-gb")
		if !(gb >= 0) || math.IsInf(gb, 0) {
			return pn, usageError("plan: --mem-gb %g: want a number of GB >= 0", gb)
		}
		pn.node.MemoryGB = gb
		from = append(from, "--mem-gb")
	}
	if pn.node.CPUs == nil || (!memSet && o.MemPerWorker > 0) {
		d, err := detect.Node()
		if err != nil {
			return pn, usageError("plan: %v (or describe the node with --cpus or --cores, and --mem-gb)", err)
		}
		if pn.node.CPUs == nil {
			pn.node.CPUs, pn.here = d.CPUs, true
			if os.Getenv(detect.EnvCores) == "" {
				pn.hint = pinning.LauncherBindHint(d.CPUs, detect.OnlineCPUs())
			}
		}
		if !memSet {
			pn.node.MemoryGB = d.MemoryGB
		}
		from = append(from, "detected")
	}
	pn.gpus = e.GPUsPerNode
	if c.IsSet("gpus") {
		pn.gpus = c.Int("gpus")
		if pn.gpus < 0 || pn.gpus > config.MaxAccelerators {
			return pn, usageError("plan: --gpus %d: must be in [0, %d]", pn.gpus, config.MaxAccelerators)
		}
		from = append(from, "--gpus")
	}
	pn.source = strings.Join(from, ", ")
	return pn, nil
}

// planVendorFrom resolves accelerator_vendor (or --accelerator-vendor) as a
// pool would on this machine. Without accelerator entries no variable is
// set, and nothing is looked up.
func planVendorFrom(c *cli.Context, e *config.Executor, o pinning.Options) (planVendor, error) {
	setting, source := e.AcceleratorVendor, "accelerator_vendor"
	if c.IsSet("accelerator-vendor") {
		setting, source = c.String("accelerator-vendor"), "--accelerator-vendor"
		if err := config.CheckVendor(setting); err != nil {
			return planVendor{}, usageError("plan: --accelerator-vendor %q: %v", setting, err)
		}
	}
	if len(o.Accelerators) == 0 {
		return planVendor{}, nil
	}
	var found []string
	if setting == pinning.VendorAuto {
		found = detect.Vendors(devRoot)
	}
	name, why, err := pinning.ResolveVendor(setting, found)
	if err != nil {
		return planVendor{}, usageError("plan: %v", err)
	}
	if setting == pinning.VendorAuto {
		why += " on this machine"
	} else {
		why = source
	}
	return planVendor{name: name, why: why}, nil
}

func writePlanTable(w io.Writer, pn planNode, o pinning.Options, l *pinning.Layout) error {
	var b strings.Builder
	mem := "memory not used"
	if pn.node.MemoryGB > 0 || o.MemPerWorker > 0 {
		mem = fmt.Sprintf("%g GB memory", pn.node.MemoryGB)
	}
	fmt.Fprintf(&b, "node:    %s (%s), %s, %s [%s]\n", plural(len(pn.node.CPUs), "CPU"),
		pinning.FormatCPUList(pn.node.CPUs), mem, plural(pn.gpus, "GPU"), pn.source)
	fmt.Fprintf(&b, "slots:   %d, limited by %s%s\n", len(l.Slots), l.LimitedBy, ties(l))
	var bounds []string
	for _, bd := range l.Bounds {
		n := strconv.Itoa(bd.Slots)
		if bd.Slots > pinning.MaxSlots {
			n = "more than " + strconv.Itoa(pinning.MaxSlots)
		}
		bounds = append(bounds, boundText(bd.Option, o, pn)+" allows "+n)
	}
	fmt.Fprintf(&b, "bounds:  %s\n", strings.Join(bounds, "; "))
	affinity := o.CPUAffinity
	if affinity == "" {
		affinity = pinning.AffinityNone
	}
	fmt.Fprintf(&b, "pinning: %s\n", affinity)
	fmt.Fprintf(&b, "sizes:   %s\n", sizesText(l, l.Shape(pn.node, o), pn.node.MemoryGB > 0 || o.MemPerWorker > 0))
	if len(o.Accelerators) > 0 {
		fmt.Fprintf(&b, "vendor:  %s\n", vendorText(pn.vendor))
	}
	if idle := idleCPUs(pn.node.CPUs, l); affinity != pinning.AffinityNone && len(idle) > 0 {
		fmt.Fprintf(&b, "idle:    %s in no slot: %s\n", plural(len(idle), "CPU"), pinning.FormatCPUList(idle))
	}
	if l.Oversubscribed {
		per := make([]int, pn.gpus)
		for _, s := range l.Slots {
			if g, err := strconv.Atoi(s.Accelerator); err == nil && g < len(per) {
				per[g]++
			}
		}
		counts := make([]string, len(per))
		for i, n := range per {
			counts[i] = strconv.Itoa(n)
		}
		fmt.Fprintf(&b, "gpus:    %d accelerator entries on %s (MPS): %s slots per GPU\n",
			len(o.Accelerators), plural(pn.gpus, "GPU"), strings.Join(counts, ","))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tCPUS\tNCPU\tACCELERATOR")
	for _, s := range l.Slots {
		cpus, ncpu := "-", "-"
		if s.CPUs != nil {
			cpus, ncpu = pinning.FormatCPUList(s.CPUs), strconv.Itoa(len(s.CPUs))
		}
		acc := s.Accelerator
		if acc == "" {
			acc = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Rank, cpus, ncpu, acc)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sizesText says what one slot holds for tasks of a size (submit --cores,
// --gpus, --mem; the smallest slot counts) and the largest task a pool of
// this layout takes: all its slots (their distinct GPUs: slots that share
// one through MPS give it once).
func sizesText(l *pinning.Layout, sh pinning.Shape, mem bool) string {
	slot := plural(sh.CPUs, "CPU")
	largest := fmt.Sprintf("--cores %d", sh.Slots*sh.CPUs)
	if sh.GPUs > 0 {
		slot += ", " + plural(sh.GPUs, "GPU")
		largest += fmt.Sprintf(" --gpus %d", l.DeviceCount())
	}
	if mem {
		slot += ", " + wire.FormatMem(sh.MemBytes)
		largest += " --mem " + wire.FormatMem(sh.MemBytes*int64(sh.Slots))
	}
	return fmt.Sprintf("a slot holds %s; the largest task a pool takes: %s (all %s)", slot, largest, plural(sh.Slots, "slot"))
}

// vendorText writes the vendor, how it was chosen and what the slots get:
// "amd [accelerator_vendor]: sets ROCR_VISIBLE_DEVICES; removes ...".
func vendorText(v planVendor) string {
	name := v.name
	if name == pinning.VendorUnknown {
		name = "unknown"
	}
	set, unset := pinning.AcceleratorEnv(v.name, "")
	text := fmt.Sprintf("%s [%s]: sets %s", name, v.why, strings.Join(slices.Sorted(maps.Keys(set)), ", "))
	if len(unset) > 0 {
		text += "; removes " + strings.Join(unset, ", ")
	}
	return text
}

// boundText writes an option with its value and what it is measured against.
func boundText(option string, o pinning.Options, pn planNode) string {
	switch option {
	case pinning.LimitMaxWorkers:
		return fmt.Sprintf("%s=%d", option, o.MaxWorkersPerNode)
	case pinning.LimitCores:
		return fmt.Sprintf("%s=%g (%s)", option, o.CoresPerWorker, plural(len(pn.node.CPUs), "CPU"))
	case pinning.LimitMemory:
		return fmt.Sprintf("%s=%g (%g GB)", option, o.MemPerWorker, pn.node.MemoryGB)
	default:
		return fmt.Sprintf("%s (%d entries)", option, len(o.Accelerators))
	}
}

// ties names the other options that allow the same count as LimitedBy.
func ties(l *pinning.Layout) string {
	var t []string
	for _, b := range l.Bounds {
		if b.Slots == len(l.Slots) && b.Option != l.LimitedBy {
			t = append(t, b.Option)
		}
	}
	if len(t) == 0 {
		return ""
	}
	return " (tied with " + strings.Join(t, ", ") + ")"
}

// idleCPUs are the node's CPUs that no slot is pinned to.
func idleCPUs(node []int, l *pinning.Layout) []int {
	used := map[int]bool{}
	for _, s := range l.Slots {
		for _, c := range s.CPUs {
			used[c] = true
		}
	}
	var idle []int
	for _, c := range node {
		if !used[c] {
			idle = append(idle, c)
			used[c] = true // count a duplicate once
		}
	}
	return idle
}

type planJSON struct {
	Slots     int            `json:"slots"`
	LimitedBy string         `json:"limited_by"`
	Slot      planShapeJSON  `json:"slot"`         // what one slot holds for tasks of a size (the smallest)
	Largest   planShapeJSON  `json:"largest_task"` // the largest task of a size a pool takes: all its slots
	Node      planNodeJSON   `json:"node"`
	Vendor    string         `json:"accelerator_vendor,omitempty"` // nvidia, amd, intel or unknown; absent without accelerators
	Workers   []planSlotJSON `json:"workers"`
}

type planShapeJSON struct {
	CPUs     int   `json:"cpus"`
	GPUs     int   `json:"gpus"`
	MemBytes int64 `json:"mem_bytes"`
}

type planNodeJSON struct {
	CPUs     []int   `json:"cpus"`
	MemoryGB float64 `json:"memory_gb"`
	GPUs     int     `json:"gpus"`
}

type planSlotJSON struct {
	Rank        int               `json:"rank"`
	CPUs        []int             `json:"cpus"` // null when affinity is none
	Accelerator string            `json:"accelerator"`
	Env         map[string]string `json:"env"`
	Unset       []string          `json:"unset,omitempty"` // inherited variables the slot's tasks do not get
}

func writePlanJSON(w io.Writer, pn planNode, o pinning.Options, l *pinning.Layout) error {
	sh := l.Shape(pn.node, o)
	out := planJSON{
		Slot:      planShapeJSON{CPUs: sh.CPUs, GPUs: sh.GPUs, MemBytes: sh.MemBytes},
		Largest:   planShapeJSON{CPUs: sh.CPUs * sh.Slots, GPUs: l.DeviceCount(), MemBytes: sh.MemBytes * int64(sh.Slots)},
		Slots:     len(l.Slots),
		LimitedBy: l.LimitedBy,
		Node:      planNodeJSON{CPUs: pn.node.CPUs, MemoryGB: pn.node.MemoryGB, GPUs: pn.gpus},
		Workers:   make([]planSlotJSON, len(l.Slots)),
	}
	if len(l.Slots) > 0 && l.Slots[0].Accelerator != "" {
		out.Vendor = pn.vendor.name
		if out.Vendor == pinning.VendorUnknown {
			out.Vendor = "unknown"
		}
	}
	for i, s := range l.Slots {
		out.Workers[i] = planSlotJSON{Rank: s.Rank, CPUs: s.CPUs, Accelerator: s.Accelerator, Env: s.Env, Unset: s.Unset}
	}
	// One line: a node's CPU list would fill a screen when indented.
	return json.NewEncoder(w).Encode(out)
}

// plural writes "1 CPU", "2 CPUs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// oneLine joins a multi-line error (config.Error lists one problem a line).
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
