package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
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
		res.Counts[Ops], res.Elapsed, res.OpsPerSec(), res.Counts[Hits], res.Counts[Misses], res.Errors,
		res.Counts[ErrorReplies], res.Counts[ProtocolErrors], res.Counts[Timeouts], res.Counts[ConnErrors], res.Latency.Quantile(0.99), res.FirstError)
	return res
}

func TestRunAgainstMemcached(t *testing.T) {
	mc := memcachedtest.Start(t)
	cfg := testConfig(mc.Addr)
	cfg.Prefill = true
	cfg.MultiGet = 3
	cfg.Warmup = 100 * time.Millisecond
	res := runBounded(t, cfg)

	if res.Counts[Prefilled] != uint64(cfg.Keys) || res.Counts[PrefillErrors] != 0 {
		t.Errorf("prefill stored %d of %d keys, %d failed", res.Counts[Prefilled], cfg.Keys, res.Counts[PrefillErrors])
	}
	if res.Counts[Ops] == 0 || res.Counts[Gets] == 0 || res.Counts[Sets] == 0 {
		t.Errorf("ops %d (gets %d, sets %d): want all > 0", res.Counts[Ops], res.Counts[Gets], res.Counts[Sets])
	}
	if res.Errors != 0 {
		t.Errorf("errors = %d, want 0 (first: %s)", res.Errors, res.FirstError)
	}
	if res.Counts[Hits] != res.Counts[Gets]*uint64(cfg.MultiGet) || res.Counts[Misses] != 0 {
		t.Errorf("after prefill: hits %d misses %d for %d gets of %d keys; want every key a hit",
			res.Counts[Hits], res.Counts[Misses], res.Counts[Gets], cfg.MultiGet)
	}
	if res.Latency.Count() != res.Counts[Ops] {
		t.Errorf("latency count %d != ops %d", res.Latency.Count(), res.Counts[Ops])
	}
	if res.Elapsed <= 0 {
		t.Errorf("elapsed %v, want the measured phase's length", res.Elapsed)
	}
	// The mix is 9:1; allow wide slack.
	if ratio := float64(res.Counts[Gets]) / float64(res.Counts[Ops]); ratio < 0.8 || ratio > 0.97 {
		t.Errorf("get share %.2f, want about 0.9", ratio)
	}
}

func TestRunStopsAfterRequests(t *testing.T) {
	mc := memcachedtest.Start(t)
	cfg := testConfig(mc.Addr)
	cfg.Requests = 1001 // not a multiple of Pipeline
	cfg.Duration = 30 * time.Second
	cfg.KeyPrefix = "fresh:" // never set: gets miss
	cfg.GetWeight, cfg.SetWeight = 1, 0
	res := runBounded(t, cfg)
	if res.Counts[Ops] != 1001 || res.Errors != 0 {
		t.Fatalf("ops %d errors %d, want exactly 1001 and 0", res.Counts[Ops], res.Errors)
	}
	if res.Counts[Hits] != 0 || res.Counts[Misses] != 1001 {
		t.Fatalf("hits %d misses %d on an empty cache", res.Counts[Hits], res.Counts[Misses])
	}
}

func TestRunCountsErrorRepliesWithoutReconnecting(t *testing.T) {
	// Items over 1k are refused with SERVER_ERROR; the connection stays usable.
	mc := memcachedtest.Start(t, "-I", "1k", "-o", "slab_chunk_max=512")
	cfg := testConfig(mc.Addr)
	cfg.ValueSize = 2000
	cfg.GetWeight, cfg.SetWeight = 1, 1
	cfg.Duration = 500 * time.Millisecond
	res := runBounded(t, cfg)
	if res.Counts[ErrorReplies] == 0 || res.Errors != res.Counts[ErrorReplies] {
		t.Errorf("errors %d, error replies %d: want only error replies", res.Errors, res.Counts[ErrorReplies])
	}
	if res.Counts[Reconnects] != 0 {
		t.Errorf("reconnects = %d after error replies, want 0", res.Counts[Reconnects])
	}
	if res.Counts[Gets] == 0 || res.Counts[Hits] != 0 {
		t.Errorf("gets %d hits %d: want gets that all miss", res.Counts[Gets], res.Counts[Hits])
	}
}

// TestRunThroughBackendFailure fails the target part way through a run:
// the run still ends by itself, with the commands before the failure
// counted, and the errors after it counted as the kind the failure causes.
func TestRunThroughBackendFailure(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		duration, timeout, failAt time.Duration
		fail                      func(*memcachedtest.Server)
		errs                      Count // counted once the target failed
		errsName                  string
	}{
		{"kill", 1500 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond,
			(*memcachedtest.Server).Kill, ConnErrors, "connection errors"},
		{"freeze", time.Second, 200 * time.Millisecond, 300 * time.Millisecond,
			func(mc *memcachedtest.Server) { _ = mc.Freeze() }, Timeouts, "timeouts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := memcachedtest.Start(t)
			cfg := testConfig(mc.Addr)
			cfg.Duration = tc.duration
			cfg.Timeout = tc.timeout
			time.AfterFunc(tc.failAt, func() { tc.fail(mc) })
			res := runBounded(t, cfg)
			if res.Counts[Ops] == 0 {
				t.Errorf("no ops before the %s", tc.name)
			}
			if res.Counts[tc.errs] == 0 {
				t.Errorf("no %s counted after the %s", tc.errsName, tc.name)
			}
		})
	}
}

func TestRunRefusesDeadTarget(t *testing.T) {
	port, err := memcachedtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("127.0.0.1:" + strconv.Itoa(port))
	if res, err := Run(context.Background(), cfg); err == nil {
		t.Fatalf("Run against a closed port = %+v, want an error", res)
	}
}

func TestRunEndsOnContextCancel(t *testing.T) {
	mc := memcachedtest.Start(t)
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
	if res.Counts[Ops] == 0 {
		t.Errorf("partial result has no ops")
	}
}

func TestWorkerBatchDoesNotAllocate(t *testing.T) {
	mc := memcachedtest.Start(t)
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
	if w.c.n[Ops] == 0 || w.c.n[ProtocolErrors]+w.c.n[ConnErrors]+w.c.n[Timeouts]+w.c.n[ErrorReplies] != 0 {
		t.Fatalf("ops %d, first error %q", w.c.n[Ops], w.c.firstErr)
	}
}

// The new-client probe connects afresh each time, over the measured phase
// only, and every one of its clients is a connection the target saw.
func TestRunNewClientProbe(t *testing.T) {
	mc := memcachedtest.Start(t)
	before, _ := strconv.Atoi(memcachedtest.Stats(t, mc.Addr, "")["total_connections"])
	cfg := testConfig(mc.Addr)
	cfg.Warmup = 200 * time.Millisecond
	cfg.NewClientEvery = 20 * time.Millisecond
	res := runBounded(t, cfg)
	n := res.NewClients.Count()
	if n == 0 || n > uint64(cfg.Duration/cfg.NewClientEvery)+1 || res.NewClientErrors != 0 {
		t.Fatalf("new clients: %d answered, %d failed; want 1..%d answered over %v, none failed",
			n, res.NewClientErrors, cfg.Duration/cfg.NewClientEvery+1, cfg.Duration)
	}
	// Stats asks on a connection of its own, counted too.
	after, _ := strconv.Atoi(memcachedtest.Stats(t, mc.Addr, "")["total_connections"])
	if want := before + 1 + 1 + cfg.Conns + int(n); after != want {
		t.Errorf("memcached saw %d connections, want %d: the first stats, Run's reachability check, %d load connections and %d new clients",
			after-before, want-before, cfg.Conns, n)
	}
	s := res.Summary()
	if s.NewClients != n || s.NewClientP50US <= 0 || s.NewClientP99US < s.NewClientP50US {
		t.Errorf("summary: %d new clients, p50 %v µs, p99 %v µs", s.NewClients, s.NewClientP50US, s.NewClientP99US)
	}
}
