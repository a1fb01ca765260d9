// Package funclen holds the product code to the house rule that no function
// is longer than a reader can take in at once: 80 lines. Tools, tests and
// the test kit are not held to it.
package funclen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxLines is the longest a product function may be, from its func line to
// its closing brace.
const maxLines = 80

// productDirs are the folders of code that ships in the mcproxy binary.
var productDirs = []string{
	"proxy", "protocol", "ring", "health", "cmd/mcproxy",
	"internal/config", "internal/admin", "internal/defaults", "internal/resolve", "internal/discover",
	"internal/twemimport",
}

// TestNoLongProductFunctions parses every non-test Go file of the product
// and fails for each function over maxLines.
func TestNoLongProductFunctions(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	checked := 0
	for _, dir := range productDirs {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s (%v): update productDirs", dir, err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(fset, path, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				checked++
				start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
				if n := end.Line - start.Line + 1; n > maxLines {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s:%d: %s is %d lines, over %d: split it along its seams", rel, start.Line, fn.Name.Name, n, maxLines)
				}
			}
		}
	}
	if checked < 100 {
		t.Fatalf("checked only %d functions: the walk is broken", checked)
	}
}
