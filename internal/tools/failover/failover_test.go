package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
)

func TestMain(m *testing.M) { childproxy.VerifyTestMain(m) }

// TestKillScenarioShort runs a shortened kill scenario against real
// memcached and a freshly built mcproxy. It checks only that the run
// completes and records an ejection and a re-add: timings are figures for
// the benchmark, not something a test can assert on a shared machine.
func TestKillScenarioShort(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mcproxy = childproxy.ClusterTestBinary(t)
	cfg.Scenario = Kill
	cfg.Conns = 4
	cfg.Keys = 2000
	cfg.OwnerSample = 600
	cfg.ReaddCheckKeys = 20
	cfg.Health = mcproxyproc.HealthSettings{Interval: 200 * time.Millisecond, Timeout: 100 * time.Millisecond, FailureLimit: 2, SuccessLimit: 2}
	cfg.BackendTimeout = 300 * time.Millisecond
	cfg.Steady = 500 * time.Millisecond
	cfg.DownFor = time.Second
	cfg.After = 500 * time.Millisecond
	cfg.MaxRun = 30 * time.Second
	cfg.Progress = t.Logf

	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	childproxy.LogReport(t, rep.WriteText)

	if !rep.Ejection.Seen || rep.Ejection.RingS == nil {
		t.Errorf("no ejection recorded: %+v", rep.Ejection)
	}
	if !rep.Readd.Seen || rep.Readd.RingS == nil {
		t.Errorf("no re-add recorded: %+v", rep.Readd)
	}
	if rep.Prefill.Stored != cfg.Keys {
		t.Errorf("prefill stored %d keys, want %d", rep.Prefill.Stored, cfg.Keys)
	}
	if rep.Total.Requests == 0 {
		t.Errorf("the load recorded no requests")
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("report JSON does not decode: %v", err)
	}
}

// TestFindStale checks the stale-read rule on a hand-made history.
func TestFindStale(t *testing.T) {
	ks := newKeySpace(2, 2)
	ms := func(v int64) int64 { return v * int64(time.Millisecond) }
	samples := []sample{
		{start: ms(10), latency: ms(1), key: 0, op: opSet, out: outStored, version: 1},      // confirmed at 11
		{start: ms(20), latency: ms(1), key: 0, op: opGet, out: outHit, version: 0},         // stale: 1 was confirmed
		{start: ms(20), latency: ms(1), key: 0, op: opGet, out: outHit, version: 1},         // fresh
		{start: ms(30), latency: ms(5), key: 1, op: opSet, out: outStored, version: 2},      // confirmed at 35
		{start: ms(32), latency: ms(1), key: 1, op: opGet, out: outHit, version: 0},         // concurrent with set 2: fine
		{start: ms(40), latency: ms(9), key: 1, op: opSet, out: outServerError, version: 3}, // reported failed
		{start: ms(60), latency: ms(1), key: 1, op: opGet, out: outHit, version: 3},         // failed set applied
	}
	a := newAnalysis(&Config{BackendTimeout: time.Second}, ks, moments{prefillEnd: ms(1)}, samples)
	var stale, unacked int
	for i := range a.samples {
		if a.stale[i] {
			stale++
			if s := a.samples[i]; s.key != 0 || s.version != 0 {
				t.Errorf("sample %+v marked stale", s)
			}
		}
		if a.unacked[i] {
			unacked++
		}
	}
	if stale != 1 || unacked != 1 {
		t.Errorf("stale=%d unacked=%d, want 1 and 1", stale, unacked)
	}
}
