package memctest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/loadgen"
	"github.com/mcproxy/mcproxy/internal/mctext"
)

// Bounds of a test load: how long Load.Check waits for progress, how many
// commands one client sends at most, and the time one command may take.
const (
	loadWait      = 10 * time.Second
	loadMaxOps    = 1_000_000
	loadOpTimeout = 3 * time.Second
)

// Load is a steady client load for tests: clients, each a connection of
// its own (a loadgen.Worker), send random sets and gets one at a time until
// Stop, and every error any of them sees is counted. A miss is not an
// error: keys that move to another backend are misses there.
type Load struct {
	ops, errs atomic.Int64
	mu        sync.Mutex
	firstErr  error
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// StartLoad starts clients against addr (a loopback address) on keys
// prefix0..prefix(keys-1) and registers Stop with t.Cleanup. Each client
// stops by itself after a million commands, so nothing runs away.
func StartLoad(t testing.TB, addr string, clients int, prefix string, keys int) *Load {
	t.Helper()
	dial, err := mctext.ResolveLoopback(addr)
	if err != nil {
		t.Fatalf("memctest: load: %v", err)
	}
	spec := &loadgen.Spec{Keys: keys, KeyPrefix: prefix, ValueSize: 32, GetWeight: 1, SetWeight: 1,
		MultiGet: 1, Timeout: loadOpTimeout, Seed: 1}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{cancel: cancel}
	for g := 0; g < clients; g++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.client(ctx, loadgen.NewWorker(spec, dial, g, 1), g)
		}()
	}
	t.Cleanup(l.Stop)
	return l
}

// client runs one connection until ctx ends or loadMaxOps.
func (l *Load) client(ctx context.Context, w *loadgen.Worker, g int) {
	defer w.Close()
	count := func(r *loadgen.Reply) {
		l.ops.Add(1)
		switch r.Outcome {
		case loadgen.OK:
		case loadgen.ErrorReply:
			l.fail(fmt.Errorf("client %d, key %d: %s", g, r.Key, r.Line))
		case loadgen.BadValue:
			l.fail(fmt.Errorf("client %d, key %d: a value not written for its key", g, r.Key))
		default:
			l.fail(fmt.Errorf("client %d, key %d: %w", g, r.Key, r.Err))
		}
	}
	for i := 0; i < loadMaxOps && ctx.Err() == nil; i++ {
		if err := w.Connect(ctx, time.Now().Add(loadOpTimeout)); err != nil {
			if ctx.Err() == nil {
				l.ops.Add(1)
				l.fail(fmt.Errorf("client %d: %w", g, err))
			}
			continue
		}
		w.Begin()
		w.AddRandom(1)
		w.Exchange(count)
	}
}

func (l *Load) fail(err error) {
	l.errs.Add(1)
	l.mu.Lock()
	if l.firstErr == nil {
		l.firstErr = err
	}
	l.mu.Unlock()
}

// Stop ends the load and waits for its clients. It may be called again.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}

// Ops returns the operations done so far.
func (l *Load) Ops() int64 { return l.ops.Load() }

// Check waits until the load has done n more operations (so a step is
// exercised under traffic), then fails the test if any client saw an
// error so far.
func (l *Load) Check(t testing.TB, step string, n int64) {
	t.Helper()
	start := l.ops.Load()
	deadline := time.Now().Add(loadWait)
	for l.ops.Load() < start+n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the load stalled at %d operations", step, l.ops.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.CheckErrors(t, step)
}

// CheckErrors fails the test if any client saw an error so far.
func (l *Load) CheckErrors(t testing.TB, step string) {
	t.Helper()
	if n := l.errs.Load(); n > 0 {
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Fatalf("%s: clients saw %d errors, first: %v", step, n, l.firstErr)
	}
}
