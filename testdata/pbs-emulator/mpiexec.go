package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// mpiexecValueOpts take a value (PALS / MPICH hydra spellings).
var mpiexecValueOpts = map[string]bool{
	"n": true, "np": true, "ppn": true, "hostfile": true, "f": true, "hosts": true,
	"host": true, "env": true, "cpu-bind": true, "depth": true, "d": true,
	"bind-to": true, "mem-bind": true, "gpu-bind": true, "pmi": true,
	"wdir": true, "umask": true, "rlimits": true,
}

// mpiexecFlagOpts take no value.
var mpiexecFlagOpts = map[string]bool{
	"envall": true, "envnone": true, "genvall": true, "genvnone": true,
	"no-transfer": true, "transfer": true, "label": true, "l": true,
	"line-buffer": true, "exclusive": true, "verbose": true, "v": true,
}

type mpiexecOpts struct {
	n, ppn   int
	hostfile string
	hosts    []string
	env      []string
	wdir     string
	cmd      []string
}

func parseMpiexec(args []string) (*mpiexecOpts, error) {
	o := &mpiexecOpts{ppn: 1}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.cmd = args[i+1:]
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.cmd = args[i:]
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case name == "genv": // -genv NAME VALUE
			if i+2 >= len(args) {
				return nil, fmt.Errorf("-genv needs a name and a value")
			}
			o.env = append(o.env, args[i+1]+"="+args[i+2])
			i += 2
			continue
		case mpiexecFlagOpts[name]:
			continue
		case !mpiexecValueOpts[name]:
			return nil, fmt.Errorf("unknown option %q", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("option %q needs a value", a)
			}
			i++
			val = args[i]
		}
		var err error
		switch name {
		case "n", "np":
			o.n, err = positive(a, val)
		case "ppn":
			o.ppn, err = positive(a, val)
		case "hostfile", "f":
			o.hostfile = val
		case "hosts", "host":
			o.hosts = strings.Split(val, ",")
		case "env":
			o.env = append(o.env, val)
		case "wdir":
			o.wdir = val
		}
		if err != nil {
			return nil, err
		}
	}
	if len(o.cmd) == 0 {
		return nil, fmt.Errorf("no command given")
	}
	return o, nil
}

func positive(opt, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s %q: want a positive number", opt, v)
	}
	return n, nil
}

// readHosts reads a host file: one host per line, blanks and # comments
// skipped, repeated lines kept (as PBS_NODEFILE lists a node once per
// mpiprocs), ":slots" suffixes dropped.
func readHosts(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hosts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		host, _, _ := strings.Cut(strings.Fields(line)[0], ":")
		hosts = append(hosts, host)
	}
	return hosts, sc.Err()
}

// uniq keeps the first of each host, in order: ranks are placed ppn per
// distinct host.
func uniq(hosts []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// mpiexec starts one copy of the command per rank, placing ranks ppn per
// host in host order, and waits for all of them. SIGTERM, SIGINT and SIGHUP
// are forwarded to every copy. The exit code is the first non-zero one
// (128+signal for a copy killed by a signal).
func mpiexec(args []string) int {
	o, err := parseMpiexec(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mpiexec: %v\n", err)
		return 2
	}
	hosts, err := rankHosts(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mpiexec: %v\n", err)
		return 2
	}
	n := o.n
	if n == 0 {
		n = len(hosts) * o.ppn
	}
	if need := (n + o.ppn - 1) / o.ppn; need > len(hosts) {
		fmt.Fprintf(os.Stderr, "mpiexec: %d ranks at %d per node need %d nodes, have %d\n", n, o.ppn, need, len(hosts))
		return 2
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	procs := make([]*exec.Cmd, 0, n)
	type result struct {
		rank int
		err  error
	}
	done := make(chan result, n)
	for rank := range n {
		node := rank / o.ppn
		cmd := exec.Command(o.cmd[0], o.cmd[1:]...)
		cmd.Dir = o.wdir
		cmd.Stdin = nil
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), o.env...)
		cmd.Env = append(cmd.Env,
			"HTEX_NODE_NAME="+hosts[node],
			"PMI_RANK="+strconv.Itoa(rank), "PMI_SIZE="+strconv.Itoa(n),
			"PMI_LOCAL_RANK="+strconv.Itoa(rank%o.ppn), "PMI_LOCAL_SIZE="+strconv.Itoa(o.ppn),
			"PALS_RANKID="+strconv.Itoa(rank), "PALS_NODEID="+strconv.Itoa(node),
			"PALS_LOCAL_RANKID="+strconv.Itoa(rank%o.ppn), "PALS_LOCAL_SIZE="+strconv.Itoa(o.ppn),
		)
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "mpiexec: rank %d: %v\n", rank, err)
			for _, p := range procs {
				_ = p.Process.Signal(syscall.SIGTERM)
			}
			for range procs {
				<-done
			}
			return 127
		}
		procs = append(procs, cmd)
		go func(rank int, c *exec.Cmd) { done <- result{rank, c.Wait()} }(rank, cmd)
	}
	code := 0
	for left := n; left > 0; {
		select {
		case s := <-sigs:
			for _, p := range procs {
				_ = p.Process.Signal(s)
			}
		case r := <-done:
			left--
			if c := rankExit(procs[r.rank]); c != 0 && code == 0 {
				code = c
			}
		}
	}
	return code
}

// rankHosts is where the ranks go, each host once: --hosts, a
// hostfile, $PBS_NODEFILE, or this host.
func rankHosts(o *mpiexecOpts) ([]string, error) {
	hosts := o.hosts
	var err error
	switch {
	case o.hostfile != "":
		if hosts, err = readHosts(o.hostfile); err != nil {
			return nil, fmt.Errorf("hostfile: %w", err)
		}
	case len(hosts) == 0 && os.Getenv("PBS_NODEFILE") != "":
		if hosts, err = readHosts(os.Getenv("PBS_NODEFILE")); err != nil {
			return nil, fmt.Errorf("PBS_NODEFILE: %w", err)
		}
	case len(hosts) == 0:
		hosts = []string{hostname()}
	}
	hosts = uniq(hosts)
	if len(hosts) == 0 {
		return nil, errors.New("no hosts")
	}
	return hosts, nil
}

func rankExit(c *exec.Cmd) int {
	ps := c.ProcessState
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
