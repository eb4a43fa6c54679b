// Command htexctl runs the htex daemon, its worker pools, and the client
// verbs (submit, wait, results, status, ...). See README.md.
package main

import (
	"os"

	"github.com/htex/htex/cmd/htexctl/app"
)

func main() {
	os.Exit(app.Main(os.Args))
}
