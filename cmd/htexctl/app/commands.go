package app

import "github.com/urfave/cli/v2"

// commands lists every verb; each is built in its own file.
func commands() []*cli.Command {
	return []*cli.Command{
		serveCommand(),
		submitCommand(),
		waitCommand(),
		resultsCommand(),
		statusCommand(),
		topCommand(),
		logsCommand(),
		cancelCommand(),
		stopCommand(),
		planCommand(),
		renderCommand(),
		configCommand(),
		workerCommand(),
		benchCommand(),
		benchPoolsCommand(),
		versionCommand(),
		completionCommand(),
		manCommand(),
	}
}
