package memcachedtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/loadgen"
	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// Bounds of a test load: how many commands one client sends at most, and
// the time one command may take.
const (
	loadMaxOps    = 1_000_000
	loadOpTimeout = 3 * time.Second
)

// Load is a steady client load for tests: clients, each a connection of
// its own (a loadgen.Worker), send random sets and gets one at a time until
// Stop, and every error any of them sees is counted with the time its
// command was sent. A miss is not an error: keys that move to another
// backend are misses there.
type Load struct {
	ops, errs atomic.Int64
	slowest   atomic.Int64 // nanoseconds, of any command that got a reply
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu        sync.Mutex
	firstErr  error
	errStarts []time.Time // when each failed command was sent
}

// StartLoad starts clients against addr (a loopback address) on keys
// prefix0..prefix(keys-1) and registers Stop with t.Cleanup. Each client
// stops by itself after a million commands, so nothing runs away.
func StartLoad(t testing.TB, addr string, clients int, prefix string, keys int) *Load {
	t.Helper()
	dial, err := textclient.ResolveLoopback(addr)
	if err != nil {
		t.Fatalf("memcachedtest: load: %v", err)
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
			l.observe(time.Since(r.Start))
		case loadgen.ErrorReply:
			l.observe(time.Since(r.Start))
			l.fail(r.Start, fmt.Errorf("client %d, key %d: %s", g, r.Key, r.Line))
		case loadgen.BadValue:
			l.fail(r.Start, fmt.Errorf("client %d, key %d: a value not written for its key", g, r.Key))
		default:
			l.fail(r.Start, fmt.Errorf("client %d, key %d: %w", g, r.Key, r.Err))
		}
	}
	for i := 0; i < loadMaxOps && ctx.Err() == nil; i++ {
		start := time.Now()
		if err := w.Connect(ctx, start.Add(loadOpTimeout)); err != nil {
			if ctx.Err() == nil {
				l.ops.Add(1)
				l.fail(start, fmt.Errorf("client %d: %w", g, err))
			}
			continue
		}
		w.Begin()
		w.AddRandom(1)
		w.Exchange(count)
	}
}

// fail counts an error of a command sent at start.
func (l *Load) fail(start time.Time, err error) {
	l.errs.Add(1)
	l.mu.Lock()
	if l.firstErr == nil {
		l.firstErr = err
	}
	l.errStarts = append(l.errStarts, start)
	l.mu.Unlock()
}

// observe keeps the slowest reply time.
func (l *Load) observe(d time.Duration) {
	for {
		s := l.slowest.Load()
		if int64(d) <= s || l.slowest.CompareAndSwap(s, int64(d)) {
			return
		}
	}
}

// Stop ends the load and waits for its clients. It may be called again.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}

// Ops returns the operations done so far.
func (l *Load) Ops() int64 { return l.ops.Load() }

// Slowest returns the longest a command waited for its reply so far.
func (l *Load) Slowest() time.Duration { return time.Duration(l.slowest.Load()) }

// ErrorsSentAfter counts the failed commands sent after at.
func (l *Load) ErrorsSentAfter(at time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.errStarts {
		if s.After(at) {
			n++
		}
	}
	return n
}

// WaitOps waits until the load has done n more operations, so that a step
// is exercised under traffic; step names it in the message.
func (l *Load) WaitOps(t testing.TB, step string, n int64) {
	t.Helper()
	start := l.ops.Load()
	WaitFor(t, fmt.Sprintf("%d more operations of the load (%s)", n, step), func() bool { return l.ops.Load() >= start+n })
}

// Check waits until the load has done n more operations, then fails the
// test if any client saw an error so far.
func (l *Load) Check(t testing.TB, step string, n int64) {
	t.Helper()
	l.WaitOps(t, step, n)
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
