package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
)

func TestMain(m *testing.M) { childproxy.VerifyTestMain(m) }

// TestOutputLimitScenarioSmall runs the output-limit scenario at a small
// size against real memcached and a freshly built mcproxy: both
// measurements report the proxy's memory and the other client's gets, and
// the slow reader receives its whole reply. The figures themselves are
// the benchmark's (mcbench -scenario output-limit), not the test's.
func TestOutputLimitScenarioSmall(t *testing.T) {
	cfg := OutputLimitConfig{Mcproxy: childproxy.ClusterTestBinary(t), Memcached: "memcached",
		sizes: &outputLimitSizes{
			pipelinedGets: 2000, pipelinedValue: 64 << 10, pipelinedFor: 300 * time.Millisecond,
			slowKeys: 200, slowValue: 16 << 10, slowRate: 16 << 20,
		}}
	results, err := RunOutputLimit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d measurements, want 2", len(results))
	}
	for _, r := range results {
		var text bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", text.String())
		if r.BaseKiB <= 0 || r.PeakKiB < r.BaseKiB || len(r.Other) == 0 || r.OtherSlowest() < r.OtherP99() {
			t.Errorf("%s: implausible figures: %+v", r.Name, r)
		}
		if !strings.Contains(text.String(), "proxy RSS before") {
			t.Errorf("%s: report without the proxy's RSS:\n%s", r.Name, text.String())
		}
	}
	slow := results[1]
	if slow.Want == 0 || !slow.Complete() {
		t.Errorf("the slow reader received %d of %d reply bytes", slow.Received, slow.Want)
	}
}
