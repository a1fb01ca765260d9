package deploytest

import (
	"os"
	"testing"

	"github.com/mcproxy/mcproxy/internal/proxyproc"
)

func TestMain(m *testing.M) {
	os.Exit(proxyproc.WithCleanup(m).Run())
}

// startMcproxy runs the mcproxy binary, built once per test run, with args
// and waits until listen accepts.
func startMcproxy(t *testing.T, listen string, args ...string) *proxyproc.TestProxy {
	t.Helper()
	return proxyproc.StartT(t, proxyproc.BuildT(t), listen, args...)
}
