package memctest

import (
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// loadWait bounds how long Load.Check waits for progress.
const loadWait = 10 * time.Second

// Load is a steady client load for tests: clients, each a gomemcache
// client of its own, alternate sets and gets of random keys until Stop,
// and every error any of them sees is counted. A miss is not an error: keys
// that move to another backend are misses there.
type Load struct {
	ops, errs atomic.Int64
	mu        sync.Mutex
	firstErr  error
	stop      chan struct{}
	wg        sync.WaitGroup
}

// StartLoad starts clients against addr on keys prefix0..prefix(keys-1)
// and registers Stop with t.Cleanup. Each client stops by itself after a
// million operations, so nothing runs away.
func StartLoad(t testing.TB, addr string, clients int, prefix string, keys int) *Load {
	l := &Load{stop: make(chan struct{})}
	for g := 0; g < clients; g++ {
		l.wg.Add(1)
		go func(g int) {
			defer l.wg.Done()
			mc := memcache.New(addr)
			mc.Timeout = 3 * time.Second
			defer mc.Close()
			rnd := rand.New(rand.NewSource(int64(g)))
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				k := prefix + strconv.Itoa(rnd.Intn(keys))
				var err error
				if i%2 == 0 {
					err = mc.Set(&memcache.Item{Key: k, Value: []byte(k)})
				} else if _, err = mc.Get(k); errors.Is(err, memcache.ErrCacheMiss) {
					err = nil
				}
				l.ops.Add(1)
				if err != nil {
					l.errs.Add(1)
					l.mu.Lock()
					if l.firstErr == nil {
						l.firstErr = fmt.Errorf("client %d, key %s: %w", g, k, err)
					}
					l.mu.Unlock()
				}
			}
		}(g)
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop ends the load and waits for its clients. It may be called again.
func (l *Load) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
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
