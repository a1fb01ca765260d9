package childproxy

import (
	"bytes"
	"io"
	"testing"
)

// LogReport logs what write (a tool's report, such as the failover or
// soak report's WriteText) writes, so that a test run shows the figures a
// short run of the tool produced; it fails the test if writing fails.
func LogReport(t testing.TB, write func(io.Writer) error) {
	t.Helper()
	var text bytes.Buffer
	if err := write(&text); err != nil {
		t.Fatalf("write the report: %v", err)
	}
	t.Logf("report:\n%s", text.String())
}
