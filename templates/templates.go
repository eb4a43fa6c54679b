// Package templates holds the batch script templates that blockscript
// renders (text/template, executed with missingkey=error): slurm.sh.tmpl,
// pbs.sh.tmpl and local.sh.tmpl. It is a package of its own only because
// //go:embed cannot reach a parent folder; it holds no logic. The fields a
// template may use are those of blockscript.Data.
package templates

import "embed"

// FS holds the *.sh.tmpl files.
//
//go:embed *.sh.tmpl
var FS embed.FS
