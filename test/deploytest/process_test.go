package deploytest

import (
	"os"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
)

func TestMain(m *testing.M) {
	os.Exit(childproxy.WithCleanup(m).Run())
}

// startMcproxy runs the mcproxy binary, built once per test run, with args
// and waits until listen accepts.
func startMcproxy(t *testing.T, listen string, args ...string) *childproxy.TestProxy {
	t.Helper()
	return childproxy.StartT(t, childproxy.BuildT(t), listen, args...)
}
