package proxy

import (
	"sync/atomic"
	"time"
)

// How busy a loop is.
//
// A loop is idle while it sleeps in epoll_wait and busy the rest of the
// time: running handlers, writing, and polling again without sleeping
// while it has work (loop.go). The loop adds up its sleep on its own
// clock, from just before a blocking epoll_wait to the clock read that
// starts the next turn, which it reads anyway: one more clock read per
// sleep, none per turn under load (a loop that never sleeps never pays
// it). The balancer (loop_balance.go) turns the growth of that sum over
// its interval into a busy fraction.
//
// Busy is wall time, not CPU time: a loop whose thread waits for a CPU
// mid-turn counts that wait as busy. That is why the balancer wakes
// another loop only when the host has an idle CPU for it to run on.

// loopLoad is what a loop publishes about its load; the loop writes it,
// the balancer and the acceptor read it.
type loopLoad struct {
	sleptNanos atomic.Int64 // time slept in epoll_wait, in all
	sleepSince atomic.Int64 // UnixNano when the current sleep began; 0 while awake
	sessions   atomic.Int32 // client sessions the loop owns now
}

// sleeping notes that the loop is about to block in epoll_wait; it returns
// the time the sleep began, for woke.
func (ld *loopLoad) sleeping() time.Time {
	t := time.Now()
	ld.sleepSince.Store(t.UnixNano())
	return t
}

// woke adds the sleep that began at since and ended at now.
func (ld *loopLoad) woke(since, now time.Time) {
	ld.sleptNanos.Add(int64(now.Sub(since)))
	ld.sleepSince.Store(0)
}

// slept returns the loop's sleep up to now, the sleep under way included,
// so that a loop asleep for a whole interval reads as idle rather than as
// busy. It may be off by the sleep that ends while it reads, which one
// interval's fraction absorbs.
func (ld *loopLoad) slept(now time.Time) time.Duration {
	total := ld.sleptNanos.Load()
	if since := ld.sleepSince.Load(); since != 0 && now.UnixNano() > since {
		total += now.UnixNano() - since
	}
	return time.Duration(total)
}
