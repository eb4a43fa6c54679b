package daemon

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/htex/htex/rundir"
)

// connCheckEvery is how often the daemon checks that its connection file
// is still there.
const connCheckEvery = 2 * time.Second

// keepConnection writes the connection file again whenever it is gone
// (deleted by hand, or by a cleanup of the run directory) until ctx ends:
// without it no client could reach the daemon, while a second `serve`
// would be refused because this one still runs.
func keepConnection(ctx context.Context, dir string, conn *rundir.Connection, log *slog.Logger) {
	t := time.NewTicker(connCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := os.Stat(rundir.Path(dir, rundir.ConnectionFile)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := rundir.WriteConnection(dir, conn); err != nil {
			log.Error("the connection file is gone and cannot be written again", "err", err)
			continue
		}
		log.Warn("the connection file was deleted: written again", "path", rundir.Path(dir, rundir.ConnectionFile))
	}
}
