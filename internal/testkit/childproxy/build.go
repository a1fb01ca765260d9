package childproxy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// mainPackage is the import path of the mcproxy binary.
const mainPackage = "github.com/mcproxy/mcproxy/cmd/mcproxy"

// GoCommand returns the go command: the one in PATH, else the one of the
// toolchain that built this program.
func GoCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no go command to build mcproxy with: %w", err)
	}
	return p, nil
}

// Build builds cmd/mcproxy into dir and returns the binary's path.
func Build(dir string) (string, error) {
	goBin, err := GoCommand()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mcproxy")
	if out, err := exec.Command(goBin, "build", "-o", bin, mainPackage).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build mcproxy: %w\n%s", err, out)
	}
	return bin, nil
}

// The binary BuildT builds once per test process, and the directory that
// holds it, which RemoveBuilt removes.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// BuildT returns the mcproxy binary for a test, built once per test process
// (or $MCPROXY_BIN if set, to test a given build). It fails the test if the
// build fails. A package that calls it removes the build with RemoveBuilt,
// for example through WithCleanup in its TestMain.
func BuildT(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MCPROXY_BIN"); p != "" {
		return p
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "mcproxy-build-"); built.err == nil {
			built.bin, built.err = Build(built.dir)
		}
	})
	if built.err != nil {
		t.Fatalf("childproxy: %v", built.err)
	}
	return built.bin
}

// RemoveBuilt removes the binary BuildT built, if any.
func RemoveBuilt() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}

// TestingM is what a TestMain runs: *testing.M, or a wrapper of it such as
// goleak.VerifyTestMain takes.
type TestingM interface{ Run() int }

type withCleanup struct{ m TestingM }

func (w withCleanup) Run() int {
	defer RemoveBuilt()
	return w.m.Run()
}

// WithCleanup returns m whose Run also removes the binary BuildT built:
// os.Exit(childproxy.WithCleanup(m).Run()).
func WithCleanup(m TestingM) TestingM { return withCleanup{m} }

// VerifyTestMain is a TestMain for packages whose tests start processes:
// it runs the tests, fails them if goroutines leak (goleak), and removes the
// binary BuildT built.
func VerifyTestMain(m *testing.M) { goleak.VerifyTestMain(WithCleanup(m)) }

// ClusterTestBinary is BuildT for a long test that starts memcached and
// mcproxy together: it skips the test under -short, and where memcached is
// not installed.
func ClusterTestBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts memcached and mcproxy")
	}
	if _, err := exec.LookPath("memcached"); err != nil {
		t.Skip("memcached not in PATH")
	}
	return BuildT(t)
}
