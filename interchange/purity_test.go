package interchange

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// coreFiles hold the core (core.go): no sockets, no SQL, no clock.
var coreFiles = []string{"core.go", "state.go", "clients.go", "pools.go", "queue.go", "resume.go",
	"commands.go", "commits.go", "dispatch.go", "spill.go", "tasks.go", "limits.go",
	"gang.go", "shapes.go", "sizes.go", "submitted.go"}

// TestCoreIsPure fails when a file of the core imports a socket or
// database package or reads the clock: those belong in the driver.
func TestCoreIsPure(t *testing.T) {
	banned := map[string]bool{"github.com/pebbe/zmq4": true, "database/sql": true, "github.com/mattn/go-sqlite3": true,
		"net": true, "os": true, "github.com/htex/htex/internal/zsock": true}
	fset := token.NewFileSet()
	for _, name := range coreFiles {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if banned[p] {
				t.Errorf("%s imports %s", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "time" && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" ||
				sel.Sel.Name == "Until" || sel.Sel.Name == "After" || sel.Sel.Name == "Sleep" || sel.Sel.Name == "NewTimer") {
				t.Errorf("%s: time.%s: the core takes the time from its events", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			if sel.Sel.Name == "Journal" || sel.Sel.Name == "ix" {
				t.Errorf("%s: %s: the core reaches the journal or the driver", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
