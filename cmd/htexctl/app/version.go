package app

import (
	"debug/elf"
	"fmt"
	"os"
	"runtime"

	zmq "github.com/pebbe/zmq4"
	"github.com/urfave/cli/v2"

	"github.com/htex/htex/wire"
)

// Version is set at build time with -ldflags "-X .../app.Version=...".
var Version = "0.1.0-dev"

// linkedLibraries is set by scripts/build-static.sh to the libzmq and
// libsodium it linked in; a development build links the system's shared
// libraries and leaves it empty.
var linkedLibraries string

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the protocol version and whether this binary is static",
		Description: "A static htexctl (scripts/build-static.sh) needs no shared library on the\n" +
			"node that runs it; a development build (go build) needs libzmq and its\n" +
			"dependencies there. --verbose names the libraries and Go version.",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also print the linked libraries and the Go version"}},
		Action: func(c *cli.Context) error {
			static, err := isStatic()
			kind := "no (needs libzmq and its shared libraries on every node)"
			switch {
			case err != nil:
				kind = "unknown (" + err.Error() + ")"
			case static:
				kind = "yes"
			}
			fmt.Fprintf(out, "htexctl %s (protocol %d)\nstatic: %s\n", Version, wire.Version, kind)
			if !c.Bool("verbose") {
				return nil
			}
			major, minor, patch := zmq.Version()
			libs := linkedLibraries
			if libs == "" {
				libs = "the system's shared libraries"
			}
			fmt.Fprintf(out, "libzmq: %d.%d.%d (CURVE: %v)\nlinked: %s\ngo: %s %s/%s\n",
				major, minor, patch, zmq.HasCurve(), libs, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// isStatic reports whether the running executable has no program
// interpreter, that is, whether the kernel starts it without ld.so and so
// without any shared library.
func isStatic() (bool, error) {
	exe, err := os.Executable()
	if err != nil {
		return false, err
	}
	return elfIsStatic(exe)
}

func elfIsStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
