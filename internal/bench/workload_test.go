package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/memctest"
)

// hangBound is how long a test waits for Run before calling it hung. It
// is far above any run here even on a loaded machine: timing figures
// belong in benchmarks, not in pass/fail tests.
const hangBound = 60 * time.Second

// testConfig is a small, short load against addr.
func testConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.Addr = addr
	cfg.Conns = 8
	cfg.Pipeline = 4
	cfg.Keys = 5000
	cfg.Duration = time.Second
	cfg.Timeout = 500 * time.Millisecond
	return cfg
}

// runBounded runs cfg and fails the test if Run has not returned within
// hangBound: a guard against a load that never ends, not a timing claim.
func runBounded(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run (bounded by %v): %v", hangBound, err)
	}
	t.Logf("%d ops in %v (%.0f ops/s), hits %d misses %d, errors %d (replies %d, protocol %d, timeouts %d, conn %d), p99 %v, first error %q",
		res.Ops, res.Elapsed, res.OpsPerSec(), res.Hits, res.Misses, res.Errors,
		res.ErrorReplies, res.ProtocolErrors, res.Timeouts, res.ConnErrors, res.Latency.Quantile(0.99), res.FirstError)
	return res
}

func TestRunAgainstMemcached(t *testing.T) {
	mc := memctest.Start(t)
	cfg := testConfig(mc.Addr)
	cfg.Prefill = true
	cfg.MultiGet = 3
	cfg.Warmup = 100 * time.Millisecond
	res := runBounded(t, cfg)

	if res.Prefilled != uint64(cfg.Keys) || res.PrefillErrors != 0 {
		t.Errorf("prefill stored %d of %d keys, %d failed", res.Prefilled, cfg.Keys, res.PrefillErrors)
	}
	if res.Ops == 0 || res.Gets == 0 || res.Sets == 0 {
		t.Errorf("ops %d (gets %d, sets %d): want all > 0", res.Ops, res.Gets, res.Sets)
	}
	if res.Errors != 0 {
		t.Errorf("errors = %d, want 0 (first: %s)", res.Errors, res.FirstError)
	}
	if res.Hits != res.Gets*uint64(cfg.MultiGet) || res.Misses != 0 {
		t.Errorf("after prefill: hits %d misses %d for %d gets of %d keys; want every key a hit",
			res.Hits, res.Misses, res.Gets, cfg.MultiGet)
	}
	if res.Latency.Count() != res.Ops {
		t.Errorf("latency count %d != ops %d", res.Latency.Count(), res.Ops)
	}
	if res.Elapsed <= 0 {
		t.Errorf("elapsed %v, want the measured phase's length", res.Elapsed)
	}
	// The mix is 9:1; allow wide slack.
	if ratio := float64(res.Gets) / float64(res.Ops); ratio < 0.8 || ratio > 0.97 {
		t.Errorf("get share %.2f, want about 0.9", ratio)
	}
}

func TestRunStopsAfterRequests(t *testing.T) {
	mc := memctest.Start(t)
	cfg := testConfig(mc.Addr)
	cfg.Requests = 1001 // not a multiple of Pipeline
	cfg.Duration = 30 * time.Second
	cfg.KeyPrefix = "fresh:" // never set: gets miss
	cfg.GetWeight, cfg.SetWeight = 1, 0
	res := runBounded(t, cfg)
	if res.Ops != 1001 || res.Errors != 0 {
		t.Fatalf("ops %d errors %d, want exactly 1001 and 0", res.Ops, res.Errors)
	}
	if res.Hits != 0 || res.Misses != 1001 {
		t.Fatalf("hits %d misses %d on an empty cache", res.Hits, res.Misses)
	}
}

func TestRunCountsErrorRepliesWithoutReconnecting(t *testing.T) {
	// Items over 1k are refused with SERVER_ERROR; the connection stays usable.
	mc := memctest.Start(t, "-I", "1k", "-o", "slab_chunk_max=512")
	cfg := testConfig(mc.Addr)
	cfg.ValueSize = 2000
	cfg.GetWeight, cfg.SetWeight = 1, 1
	cfg.Duration = 500 * time.Millisecond
	res := runBounded(t, cfg)
	if res.ErrorReplies == 0 || res.Errors != res.ErrorReplies {
		t.Errorf("errors %d, error replies %d: want only error replies", res.Errors, res.ErrorReplies)
	}
	if res.Reconnects != 0 {
		t.Errorf("reconnects = %d after error replies, want 0", res.Reconnects)
	}
	if res.Gets == 0 || res.Hits != 0 {
		t.Errorf("gets %d hits %d: want gets that all miss", res.Gets, res.Hits)
	}
}

func TestRunSurvivesBackendDeath(t *testing.T) {
	mc := memctest.Start(t)
	cfg := testConfig(mc.Addr)
	cfg.Duration = 1500 * time.Millisecond
	cfg.Timeout = 300 * time.Millisecond
	time.AfterFunc(400*time.Millisecond, mc.Kill)
	res := runBounded(t, cfg)
	if res.Ops == 0 {
		t.Errorf("no ops before the kill")
	}
	if res.ConnErrors == 0 {
		t.Errorf("no connection errors counted after the kill")
	}
}

func TestRunBoundedWhenBackendFreezes(t *testing.T) {
	mc := memctest.Start(t)
	cfg := testConfig(mc.Addr)
	cfg.Duration = time.Second
	cfg.Timeout = 200 * time.Millisecond
	time.AfterFunc(300*time.Millisecond, func() { _ = mc.Freeze() })
	res := runBounded(t, cfg)
	if res.Ops == 0 {
		t.Errorf("no ops before the freeze")
	}
	if res.Timeouts == 0 {
		t.Errorf("no timeouts counted while frozen")
	}
}

func TestRunRefusesDeadTarget(t *testing.T) {
	port, err := memctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("127.0.0.1:" + strconv.Itoa(port))
	if res, err := Run(context.Background(), cfg); err == nil {
		t.Fatalf("Run against a closed port = %+v, want an error", res)
	}
}

func TestRunEndsOnContextCancel(t *testing.T) {
	mc := memctest.Start(t)
	cfg := testConfig(mc.Addr)
	cfg.Duration = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, cfg)
	if err == nil || res == nil {
		t.Fatalf("Run = %v, %v; want a partial result and the context's error", res, err)
	}
	if took := time.Since(start); took > hangBound {
		t.Fatalf("Run took %v after cancel: it did not stop", took)
	}
	if res.Ops == 0 {
		t.Errorf("partial result has no ops")
	}
}

func TestWorkerBatchDoesNotAllocate(t *testing.T) {
	mc := memctest.Start(t)
	cfg := testConfig(mc.Addr)
	cfg.MultiGet = 4
	cfg.Pipeline = 16
	dial, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(&cfg, cfg.spec(), dial, 0)
	defer w.close()
	ctx := context.Background()
	if !w.connect(ctx, time.Now(), true) {
		t.Fatalf("connect: %s", w.c.firstErr)
	}
	batch := func() {
		w.lw.Begin()
		for i := 0; i < cfg.Pipeline; i++ {
			if i%4 == 0 {
				w.lw.AddSet(i % cfg.Keys)
			} else {
				w.lw.AddGet()
			}
		}
		w.exchange(true)
	}
	batch() // warm the buffers
	if n := testing.AllocsPerRun(200, batch); n != 0 {
		t.Errorf("one batch of %d commands allocates %v times", cfg.Pipeline, n)
	}
	if w.c.ops == 0 || w.c.protoErrs+w.c.connErrs+w.c.timeouts+w.c.errReplies != 0 {
		t.Fatalf("ops %d, first error %q", w.c.ops, w.c.firstErr)
	}
}
