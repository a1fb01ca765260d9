package soak

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
)

func TestMain(m *testing.M) { childproxy.VerifyTestMain(m) }

// TestSoakShort runs a 9-second soak with one kill and restart against
// real memcached and a freshly built mcproxy, and checks that the tool
// works: traffic of every kind flowed, every key read was accounted for,
// the kill, the ejection and the re-add are in the timeline, and the
// proxy's footprint was sampled. It does not require zero stale reads:
// finding them is the tool's job, and the count is logged.
func TestSoakShort(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mcproxy = childproxy.ClusterTestBinary(t)
	cfg.Duration = 9 * time.Second
	cfg.Workload.Conns = 8
	cfg.Workload.RegisterKeys = 1000
	cfg.Workload.CounterKeys = 100
	cfg.Chaos = ChaosConfig{KillBackend: 0, FreezeBackend: -1, Start: 2 * time.Second, Period: time.Minute,
		KillDown: 2 * time.Second, FreezeFor: time.Second, QuietTail: 3 * time.Second}
	cfg.SettleWait = 20 * time.Second
	cfg.Progress = t.Logf
	cfg.ProgressEvery = 3 * time.Second

	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	childproxy.LogReport(t, rep.WriteText)
	t.Logf("stale reads: %d, bogus reads: %d", rep.StaleCount(), rep.BogusCount())

	for _, name := range cmdNames {
		if name == "add" {
			continue // only after a counter was lost
		}
		if rep.Sent[name] == 0 {
			t.Errorf("no %s sent", name)
		}
	}
	if rep.Sent["add"] < int64(cfg.Workload.CounterKeys)/2 {
		t.Errorf("%d adds sent, want most of the %d counters created", rep.Sent["add"], cfg.Workload.CounterKeys)
	}
	// Every key a get or gets asked for is a hit, a miss, or lost with its
	// connection; every incr is answered or lost; every hit, miss and incr
	// answer got a verdict.
	if got := rep.Replies["hit"] + rep.Replies["miss"] + rep.LostReads; got != rep.KeysRead {
		t.Errorf("keys read %d, but hits %d + misses %d + lost %d = %d",
			rep.KeysRead, rep.Replies["hit"], rep.Replies["miss"], rep.LostReads, got)
	}
	incrAnswers := rep.Replies["incr_value"] + rep.Replies["incr_not_found"]
	if got := incrAnswers + rep.LostIncrs; got != rep.Sent["incr"] {
		t.Errorf("incrs sent %d, but answered %d + lost %d = %d", rep.Sent["incr"], incrAnswers, rep.LostIncrs, got)
	}
	var verdicts int64
	for _, n := range rep.Verdicts {
		verdicts += n
	}
	if want := rep.Replies["hit"] + rep.Replies["miss"] + incrAnswers; verdicts != want {
		t.Errorf("%d verdicts, want one per hit, miss and incr answer: %d", verdicts, want)
	}
	if rep.Verdicts["ok"] == 0 {
		t.Errorf("no read was classified ok")
	}
	if rep.BogusCount() != 0 {
		t.Errorf("%d bogus reads: %v", rep.BogusCount(), rep.Bogus)
	}
	if n := rep.Count("chaos", "SIGKILL"); n != 1 {
		t.Errorf("%d kills in the timeline, want 1", n)
	}
	if n := rep.Count("chaos", "restart"); n != 1 || rep.Count("chaos", "restart on the same port (pid 0)") != 0 {
		t.Errorf("restart missing or failed in the timeline (the report is logged above)")
	}
	if rep.Count("proxy", "ejected") < 1 || rep.Count("proxy", "re-added") < 1 || !rep.AllInRing {
		t.Errorf("want an ejection and a re-add seen in stats backends, and every backend in the ring at the end")
	}
	if rep.Start.RSSKiB <= 0 || rep.Start.Goroutines <= 0 || rep.End.RSSKiB <= 0 || rep.End.Goroutines <= 0 || rep.SampleErr != "" {
		t.Errorf("footprint not sampled: start %+v, end %+v, %s", rep.Start, rep.End, rep.SampleErr)
	}
	if !strings.HasPrefix(rep.ProxyExit, "clean") {
		t.Errorf("proxy exit: %s", rep.ProxyExit)
	}
}
