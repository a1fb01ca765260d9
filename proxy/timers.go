package proxy

import "time"

// Deadlines on an event loop.
//
// A loop arms no timer per request. Request deadlines are quantized
// (deadlineQuantum) and a backend connection answers in order, so the only
// deadline that can expire first on a connection is its oldest request's:
// each turn the loop looks at the head of each of its connections' queues,
// a handful of comparisons. Client deadlines (the idle timeout, the quiet
// period of a drain, the linger after a half-close) are coarse and are
// checked by a scan of the loop's sessions at most every
// sessionScanInterval, and only while some session has such a deadline.
// epoll_wait sleeps until the earliest of these can expire.

// sessionScanInterval spaces out the scans of client deadlines. Drain and
// linger periods (drainQuiet, 200ms) are an eighth longer at most; idle
// timeouts are whole seconds in practice.
const sessionScanInterval = 25 * time.Millisecond

// loopTimers is the deadline state of one loop; owned by the loop.
type loopTimers struct {
	// nextScan is when client deadlines are next checked; zero when no
	// session has one.
	nextScan time.Time
}

// pollTimeout returns how long epoll_wait may sleep, in milliseconds, or -1
// when nothing can expire.
func (t *loopTimers) pollTimeout(l *eventLoop) int {
	var next time.Time
	for _, c := range l.conns {
		if d, ok := c.nextDeadline(); ok && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	if !t.nextScan.IsZero() && (next.IsZero() || t.nextScan.Before(next)) {
		next = t.nextScan
	}
	if next.IsZero() {
		return -1
	}
	wait := time.Until(next)
	if wait <= 0 {
		return 0
	}
	return int((wait + time.Millisecond - 1) / time.Millisecond) // round up: never wake before it
}

// expire fails the requests whose deadline has passed and runs the client
// deadlines that are due.
func (t *loopTimers) expire(l *eventLoop) {
	for _, c := range l.conns {
		c.expire(l.now)
	}
	if t.nextScan.IsZero() || l.now.Before(t.nextScan) {
		return
	}
	t.nextScan = time.Time{}
	for s := range l.sessions {
		s.checkDeadlines(l.now)
	}
}

// wantScan asks for client deadlines to be checked within
// sessionScanInterval; a session calls it while it has one.
func (t *loopTimers) wantScan(now time.Time) {
	if t.nextScan.IsZero() {
		t.nextScan = now.Add(sessionScanInterval)
	}
}
