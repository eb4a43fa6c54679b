package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// runDirFlag is --run-dir, shared by every verb that works on a run.
var runDirFlag = &cli.StringFlag{
	Name:    "run-dir",
	EnvVars: []string{"HTEX_RUN_DIR"},
	Usage:   "run directory (default: $HTEX_RUN_DIR, else ~/.htex/<label>)",
}

// resolveRunDir returns the run directory of a command, as an absolute
// path: --run-dir, else env HTEX_RUN_DIR, else ~/.htex/<label>. A leading
// "~/" is expanded.
func resolveRunDir(c *cli.Context, label string) (string, error) {
	dir := ""
	if c != nil {
		dir = c.String(runDirFlag.Name)
	}
	if dir == "" {
		dir = os.Getenv("HTEX_RUN_DIR")
	}
	if dir == "" {
		if label == "" {
			return "", fmt.Errorf("no run directory: give --run-dir or set HTEX_RUN_DIR")
		}
		if strings.ContainsRune(label, filepath.Separator) || label == "." || label == ".." {
			return "", fmt.Errorf("label %q cannot name a run directory under ~/.htex: give --run-dir", label)
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no run directory: give --run-dir or set HTEX_RUN_DIR (%v)", err)
		}
		return filepath.Join(home, ".htex", label), nil
	}
	if dir == "~" || strings.HasPrefix(dir, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("run directory %q: %v", dir, err)
		}
		dir = filepath.Join(home, dir[1:])
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("run directory %q: %v", dir, err)
	}
	return abs, nil
}
