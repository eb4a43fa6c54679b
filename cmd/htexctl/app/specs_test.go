package app

import (
	"github.com/urfave/cli/v2"

	"github.com/htex/htex/client"
	"github.com/htex/htex/wire"
)

// buildSpecs makes every task of what submit would send, for the tests.
func buildSpecs(c *cli.Context) ([]*wire.TaskSpec, error) {
	src, err := buildSource(c)
	if err != nil {
		return nil, err
	}
	return allSpecs(src)
}

func allSpecs(src client.Source) ([]*wire.TaskSpec, error) {
	specs := make([]*wire.TaskSpec, src.N)
	for i := range specs {
		var err error
		if specs[i], err = src.At(i); err != nil {
			return nil, err
		}
	}
	return specs, nil
}
