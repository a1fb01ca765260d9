// Package linkage checks what the binaries under cmd/ link: the product and
// the tools must not carry the test kit. Tools run memcached and mcproxy
// through internal/tools (memcachedproc, mcproxyproc, childproc); the
// testing.TB helpers around them live in internal/testkit, which imports
// testing and goleak.
package linkage

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
)

const module = "github.com/mcproxy/mcproxy"

// forbidden reports whether a binary must not link the package path.
func forbidden(path string) bool {
	return path == "testing" || strings.HasPrefix(path, "testing/") ||
		path == "go.uber.org/goleak" || strings.HasPrefix(path, "go.uber.org/goleak/") ||
		strings.HasPrefix(path, module+"/internal/testkit/") ||
		strings.HasPrefix(path, "go.uber.org/zap/zaptest")
}

// TestBinariesLinkNoTestKit lists the dependencies of every main package
// under cmd/ with `go list -deps` and fails for each one that links
// testing, goleak or the test kit.
func TestBinariesLinkNoTestKit(t *testing.T) {
	goBin, err := childproxy.GoCommand()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "list", "-f",
		`{{if eq .Name "main"}}{{.ImportPath}}{{range .Deps}} {{.}}{{end}}{{"\n"}}{{end}}`,
		module+"/cmd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	binaries := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		binaries++
		for _, dep := range fields[1:] {
			if forbidden(dep) {
				t.Errorf("%s links %s", fields[0], dep)
			}
		}
	}
	if binaries < 4 { // mcproxy, mcbench, mcfailover, mcsoak
		t.Fatalf("go list found %d binaries under cmd/, want at least 4:\n%s", binaries, out)
	}
	if !t.Failed() {
		t.Logf("%d binaries under cmd/ link neither testing, goleak nor the test kit", binaries)
	}
}
