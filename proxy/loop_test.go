package proxy

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestLoopPostWakes: functions posted from many goroutines at once all run,
// none waits for an unrelated event to wake the loop.
func TestLoopPostWakes(t *testing.T) {
	p := &Proxy{log: zap.NewNop()}
	l, err := newEventLoop(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	go l.run()
	const posters, each = 8, 2000
	var wg sync.WaitGroup
	ran := 0
	for range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				done := make(chan struct{})
				l.post(func() { ran++; close(done) })
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Error("a posted function did not run")
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return // a lost wake-up: stopping the loop would wait for it too
	}
	if !l.call(func() {}) || ran != posters*each {
		t.Fatalf("%d of %d posted functions ran", ran, posters*each)
	}
	l.stop()
}
