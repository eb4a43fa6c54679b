package app

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestEnvFlagExact: --env and -e values reach the specs as typed: commas,
// spaces, '=' and bytes that are not UTF-8 included.
func TestEnvFlagExact(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"commas", []string{"--env", "X=a,b=c", "--env", "OMP_PLACES={0,1},{2,3}"}, []string{"X=a,b=c", "OMP_PLACES={0,1},{2,3}"}},
		{"short alias", []string{"-e", "A=1", "-e", "B= 2 "}, []string{"A=1", "B= 2 "}},
		{"bytes", []string{"--env", "X=\xff\x80"}, []string{"X=\xff\x80"}},
		{"none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			cmd := submitCommand()
			cmd.Action = func(c *cli.Context) error {
				specs, err := buildSpecs(c)
				if err != nil {
					return err
				}
				got = specs[0].Envs()
				return nil
			}
			a := &cli.App{Name: "htexctl", Commands: []*cli.Command{cmd}, DisableSliceFlagSeparator: true}
			args := append(append([]string{"htexctl", "submit"}, tt.args...), "--", "true")
			if err := a.Run(args); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("env %q, want %q", got, tt.want)
			}
		})
	}
}
