// Package blockscript renders the batch script of one block: scheduler
// directives, scheduler_options, the HTEX_* environment, worker_init and the
// launcher line that starts one worker pool per node. It reads the template
// (embedded, or the site's own file) and returns text; it writes and submits
// nothing.
package blockscript

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/htex/htex/config"
	"github.com/htex/htex/launcher"
	"github.com/htex/htex/templates"
)

// Params are what changes from one block to the next.
type Params struct {
	BlockID       int64
	RunDir        string
	BlockDir      string // <run-dir>/blocks/<id>; stdout/stderr of the job go here ("" = that default)
	WorkerCommand string // shell words that start one pool, e.g. "/usr/local/bin/htexctl worker --run-dir /x --block-id 3"
}

// Data is what a template sees. A site's own template (provider.template)
// may use every field; a field it names that does not exist is an error.
type Data struct {
	JobName  string // htex-<label>-<block id>, safe for Slurm and PBS
	Label    string
	BlockID  int64
	RunDir   string
	BlockDir string
	Nodes    int

	Walltime        string // as configured
	WalltimeSeconds int64
	SlurmTime       string // [D-]HH:MM:SS, seconds kept
	PBSWalltime     string // HH:MM:SS, hours may exceed 24

	// Slurm
	Account, Partition, QOS, Constraint, Clusters string
	Exclusive                                     bool
	CoresPerNode                                  int // 0 = not set
	MemPerNode                                    int // GB, 0 = not set
	// GPUsPerNode is executor.gpus_per_node when the batch script must ask
	// for the GPUs itself (--gpus-per-node), else 0 (see gpuRequest).
	GPUsPerNode int

	// PBS
	Queue  string
	Select string // <nodes>[:ncpus=<cpus_per_node>][:<select_options>]
	Place  string

	SchedulerOptions string // verbatim, trailing newlines removed
	WorkerInit       string // verbatim, trailing newlines removed

	LauncherKind  string
	Launcher      string // the lines that start one pool per node, newline-terminated
	WorkerCommand string

	Provider config.Provider // every provider option, for a site's own template
}

// funcs are the template functions: shq quotes a string for the shell.
var funcs = template.FuncMap{"shq": Quote}

// Render renders the batch script of one block. It uses the template file
// named by provider.template when set, else the embedded template of
// provider.kind.
func Render(cfg *config.Config, p Params) (string, error) {
	d, err := NewData(cfg, p)
	if err != nil {
		return "", err
	}
	name, text, err := templateText(&cfg.Provider)
	if err != nil {
		return "", err
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return b.String(), nil
}

func templateText(p *config.Provider) (name, text string, err error) {
	if p.Template != "" {
		data, err := os.ReadFile(p.Template)
		if err != nil {
			return "", "", fmt.Errorf("provider.template: %w", err)
		}
		return p.Template, string(data), nil
	}
	name = p.Kind + ".sh.tmpl"
	data, err := fs.ReadFile(templates.FS, name)
	if err != nil {
		return "", "", fmt.Errorf("provider.kind %q: no embedded template %s", p.Kind, name)
	}
	return name, string(data), nil
}

// NewData checks the config and the parameters and computes what a template
// sees.
func NewData(cfg *config.Config, p Params) (*Data, error) {
	if cfg == nil {
		return nil, fmt.Errorf("render block %d: no config", p.BlockID)
	}
	pr := cfg.Provider
	if strings.TrimSpace(p.WorkerCommand) == "" {
		return nil, fmt.Errorf("render block %d: empty worker command", p.BlockID)
	}
	blockDir := p.BlockDir
	if blockDir == "" {
		if p.RunDir == "" {
			return nil, fmt.Errorf("render block %d: no run directory", p.BlockID)
		}
		blockDir = filepath.Join(p.RunDir, "blocks", strconv.FormatInt(p.BlockID, 10))
	}
	wt, err := config.ParseWalltime(pr.Walltime)
	if err != nil {
		return nil, fmt.Errorf("provider.%w", err)
	}
	nodes := max(pr.NodesPerBlock, 1)
	line, err := launcher.Line(pr.Launcher, p.WorkerCommand, nodes, pr.LauncherOptions)
	if err != nil {
		return nil, fmt.Errorf("provider.launcher: %w", err)
	}
	d := &Data{
		JobName:          JobName(cfg.Executor.Label, p.BlockID),
		Label:            cfg.Executor.Label,
		BlockID:          p.BlockID,
		RunDir:           p.RunDir,
		BlockDir:         blockDir,
		Nodes:            nodes,
		Walltime:         pr.Walltime,
		WalltimeSeconds:  int64(wt / time.Second),
		SlurmTime:        slurmTime(wt),
		PBSWalltime:      pbsWalltime(wt),
		Account:          pr.Account,
		Partition:        pr.Partition,
		QOS:              pr.QOS,
		Constraint:       pr.Constraint,
		Clusters:         pr.Clusters,
		Exclusive:        pr.Exclusive != nil && *pr.Exclusive,
		CoresPerNode:     pr.CoresPerNode,
		MemPerNode:       pr.MemPerNode,
		GPUsPerNode:      gpuRequest(cfg.Executor.GPUsPerNode, pr.SchedulerOptions),
		Queue:            pr.Queue,
		Select:           pbsSelect(nodes, pr.CPUsPerNode, pr.SelectOptions),
		Place:            pr.Place,
		SchedulerOptions: strings.TrimRight(pr.SchedulerOptions, "\r\n"),
		WorkerInit:       strings.TrimRight(pr.WorkerInit, "\r\n"),
		LauncherKind:     pr.Launcher,
		Launcher:         line,
		WorkerCommand:    p.WorkerCommand,
		Provider:         pr,
	}
	if err := d.checkDirectives(pr.Kind); err != nil {
		return nil, err
	}
	return d, nil
}

// checkDirectives rejects values that would break or inject a directive line.
func (d *Data) checkDirectives(kind string) error {
	if kind != "slurm" && kind != "pbs" {
		return nil
	}
	if strings.ContainsAny(d.BlockDir, " \t\r\n#") {
		return fmt.Errorf("block directory %q: a %s directive cannot hold whitespace or '#'; choose a run directory without them", d.BlockDir, kind)
	}
	if kind == "slurm" && strings.Contains(d.BlockDir, "%") {
		return fmt.Errorf("block directory %q: '%%' would be read by Slurm as a file name pattern; choose a run directory without it", d.BlockDir)
	}
	for _, f := range []struct{ name, v string }{
		{"account", d.Account}, {"partition", d.Partition}, {"qos", d.QOS},
		{"constraint", d.Constraint}, {"clusters", d.Clusters}, {"queue", d.Queue},
		{"select_options", d.Provider.SelectOptions}, {"place", d.Place},
	} {
		if strings.ContainsAny(f.v, "\r\n") {
			return fmt.Errorf("provider.%s %q: must be one line", f.name, f.v)
		}
	}
	return nil
}

// gpuRequestRE matches a GPU request among scheduler_options: --gpus,
// --gpus-per-node/-task/-socket, -G, or a gres list that names gpu.
var gpuRequestRE = regexp.MustCompile(`(^|\s)(--gpus(-per-[a-z]+)?[=\s]|-G\s*\S|--gres[=\s]\S*\bgpu\b)`)

// gpuRequest is the --gpus-per-node count a Slurm batch script asks for:
// executor.gpus_per_node, unless scheduler_options already ask for GPUs
// (the user's request wins, and sbatch(1) says --gpus-per-node "is
// mutually exclusive with --gres=gpu"), else 0. A job that does not ask for its GPUs
// gets none on a shared node, and on an --exclusive one its steps do not
// get them either: "a job step is allocated all of the generic resources
// that have been requested by the job, except those implicitly requested
// when a job is exclusive" (srun(1), --gres, Slurm 22.05). The pool lays
// out gpus_per_node GPUs, so the job must hold them explicitly.
func gpuRequest(gpusPerNode int, schedulerOptions string) int {
	if gpusPerNode <= 0 || gpuRequestRE.MatchString(schedulerOptions) {
		return 0
	}
	return gpusPerNode
}

// JobName is the scheduler's job name of a block: htex-<label>-<id>, with
// every character other than letters, digits, '.', '_' and '-' replaced by
// '_' (PBS and Slurm both accept the result).
func JobName(label string, blockID int64) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, label)
	return fmt.Sprintf("htex-%s-%d", clean, blockID)
}

// WorkerCommand is the command line that starts one pool of a block:
// prefix (shell words, verbatim, e.g. the quoted path of htexctl) followed
// by "worker --run-dir <run-dir> --block-id <id>".
func WorkerCommand(prefix, runDir string, blockID int64) string {
	return fmt.Sprintf("%s worker --run-dir %s --block-id %d", prefix, Quote(runDir), blockID)
}

// slurmTime formats a walltime for --time, keeping its seconds:
// HH:MM:SS, or D-HH:MM:SS from one day on.
func slurmTime(d time.Duration) string {
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	hms := fmt.Sprintf("%02d:%02d:%02d", s/3600, s%3600/60, s%60)
	if days > 0 {
		return fmt.Sprintf("%d-%s", days, hms)
	}
	return hms
}

// pbsWalltime formats a walltime for -l walltime= as HH:MM:SS (hours may
// exceed 24).
func pbsWalltime(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s%3600/60, s%60)
}

// pbsSelect is the value of -l select=: the node count, ncpus when
// cpus_per_node is set, then select_options (a leading ':' is optional).
func pbsSelect(nodes, cpus int, options string) string {
	s := strconv.Itoa(nodes)
	if cpus > 0 {
		s += ":ncpus=" + strconv.Itoa(cpus)
	}
	if o := strings.TrimLeft(strings.TrimSpace(options), ":"); o != "" {
		s += ":" + o
	}
	return s
}

// Quote returns s as one shell word: unchanged when it holds only characters
// the shell leaves alone, else in single quotes.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
