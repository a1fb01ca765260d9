package deploytest

import (
	"os"
	"testing"

	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
)

func TestMain(m *testing.M) {
	os.Exit(mcproxyproc.WithCleanup(m).Run())
}

// startMcproxy runs the mcproxy binary, built once per test run, with args
// and waits until listen accepts.
func startMcproxy(t *testing.T, listen string, args ...string) *mcproxyproc.TestProxy {
	t.Helper()
	return mcproxyproc.StartT(t, mcproxyproc.BuildT(t), listen, args...)
}
