package app

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The shells ask htexctl itself for the words that may follow: urfave/cli
// answers a command line ending in --generate-bash-completion with the
// verbs or the flags that fit (App.EnableBashCompletion). The bash and zsh
// scripts below pass the line on; fish gets urfave/cli's own generated
// completions (App.ToFishCompletion).

const bashCompletion = `# bash completion for htexctl (htexctl completion bash)
_htexctl_complete() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local line=("${COMP_WORDS[@]:0:COMP_CWORD}")
	local opts
	if [[ $cur == -* ]]; then
		opts=$("${line[@]}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		opts=$("${line[@]}" --generate-bash-completion 2>/dev/null)
	fi
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _htexctl_complete htexctl
`

const zshCompletion = `#compdef htexctl
# zsh completion for htexctl (htexctl completion zsh)
_htexctl() {
	local -a opts
	local cur=${words[CURRENT]}
	if [[ $cur == -* ]]; then
		opts=("${(@f)$(${words[1,CURRENT-1]} $cur --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[1,CURRENT-1]} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ -n ${opts[1]} ]]; then
		_describe 'htexctl' opts
	else
		_files
	fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
	_htexctl "$@"
else
	compdef _htexctl htexctl
fi
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "Install (once per user; a new shell picks it up):\n" +
			"  bash: htexctl completion bash > ~/.local/share/bash-completion/completions/htexctl\n" +
			"        (or add `source <(htexctl completion bash)` to ~/.bashrc)\n" +
			"  zsh:  htexctl completion zsh > ~/.zfunc/_htexctl, with `fpath+=(~/.zfunc); autoload -U compinit; compinit` in ~/.zshrc\n" +
			"  fish: htexctl completion fish > ~/.config/fish/completions/htexctl.fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("completion: want one of bash, zsh, fish")
			}
			switch sh := c.Args().First(); sh {
			case "bash":
				fmt.Fprint(out, bashCompletion)
			case "zsh":
				fmt.Fprint(out, zshCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return failure("completion fish: %v", err)
				}
				fmt.Fprint(out, s)
			default:
				return usageError("completion: shell %q: want bash, zsh or fish", sh)
			}
			return nil
		},
	}
}

func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page (roff), generated from the command definitions",
		Description: "Install: mkdir -p ~/.local/share/man/man1 && htexctl man > ~/.local/share/man/man1/htexctl.1\n" +
			"(man finds it when ~/.local/bin is on PATH; else add ~/.local/share/man to MANPATH).\n" +
			"Read it without installing: htexctl man | man -l -",
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageError("man: takes no arguments")
			}
			s, err := c.App.ToManWithSection(1)
			if err != nil {
				return failure("man: %v", err)
			}
			fmt.Fprint(out, s)
			return nil
		},
	}
}
