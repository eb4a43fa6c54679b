package app

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// urfave/cli stops reading flags at the first argument that is not one, so
// `htexctl results 7 --json` would take --json as a second job id. Every
// verb whose arguments are not a command line accepts flags after its
// arguments: flagsFirst moves them in front before the CLI parses. submit
// is left as typed (its arguments are the task's command, whose own flags
// must stay with it), and so is everything after a "--".

// commandTakesCommand lists the verbs whose arguments are a command line.
var commandTakesCommand = map[string]bool{"submit": true}

// reorderArgs applies flagsFirst to the verb (and subcommand) of args, a
// whole command line with the program name first.
func reorderArgs(cmds []*cli.Command, args []string) []string {
	if len(args) < 2 {
		return args
	}
	cmd := findCommand(cmds, args[1])
	if cmd == nil || commandTakesCommand[cmd.Name] || cmd.SkipFlagParsing {
		return args
	}
	head := 2
	if len(cmd.Subcommands) > 0 {
		if len(args) < 3 {
			return args
		}
		if cmd = findCommand(cmd.Subcommands, args[2]); cmd == nil {
			return args
		}
		head = 3
	}
	out := append([]string{}, args[:head]...)
	return append(out, flagsFirst(cmd.Flags, args[head:])...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// flagsFirst returns args with every flag (and the value of a flag that
// takes one) moved before the other arguments, each group in its order.
// A "--" ends the flags: it and what follows stay, as typed, after the
// other arguments.
func flagsFirst(flags []cli.Flag, args []string) []string {
	takesValue := map[string]bool{}
	for _, f := range flags {
		tv, ok := f.(cli.DocGenerationFlag)
		for _, n := range f.Names() {
			takesValue[n] = ok && tv.TakesValue()
		}
	}
	var front, rest, dangling []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		switch {
		case strings.Contains(name, "=") || !takesValue[name]:
			front = append(front, a)
		case i+1 < len(args):
			front = append(front, a, args[i+1])
			i++
		default: // its value is missing: it stays last, for the CLI to say so
			dangling = append(dangling, a)
		}
	}
	return append(append(front, rest...), dangling...)
}
