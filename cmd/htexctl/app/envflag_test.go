package app

import (
	"slices"
	"testing"
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
			specs, err := submitSpecs(append(append([]string{}, tt.args...), "--", "true")...)
			if err != nil {
				t.Fatal(err)
			}
			got := specs[0].Envs()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("env %q, want %q", got, tt.want)
			}
		})
	}
}
