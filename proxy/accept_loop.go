package proxy

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Accepting on the first event loop too.
//
// The acceptor goroutine waits for clients through the Go runtime's poller
// (accept.go). The runtime looks at that poller when a thread has nothing
// else to run, or every 10 ms from its monitor thread. With one CPU
// (GOMAXPROCS 1: a container limited to one CPU, or a process pinned to
// one) and an event loop that is busy, nothing else ever runs, so a client
// that connects waits for the monitor: measured pinned to one CPU under
// "single get, 1 in flight" (make compare's new-client probe), a new
// client's dial to first reply took 8.0 ms at the median (p99 15.4 ms)
// against 1.3 ms through twemproxy, which accepts in its event loop; with
// the first loop accepting too, 1.0 ms (p99 2.0 ms).
//
// So the first event loop, which is always awake (loop_balance.go), also
// watches each clear-text listening socket in its epoll set, and when a
// client is waiting it accepts it in its own turn and deals it to a loop
// as the acceptor would (admit). The acceptor goroutine waits as before;
// whichever comes first accepts (the kernel hands each client to one
// accept4), and the other finds nothing. The loop does only the plain case:
// when accepting is paused at the descriptor limits (listenGate), or
// accept4 fails with anything but "no client", or the listener is
// closing, it stops watching and leaves it all to the acceptor goroutine,
// which watches again (rearm) once it has accepted everything waiting. A
// TLS listener is not watched: its handshakes run on goroutines, which
// wait for the same runtime either way.
//
// The loop watches through a duplicate of the listening socket of its own,
// registered EPOLLONESHOT: each readiness is reported once, and the loop
// arms it again after accepting what was waiting, so a listener it has
// stopped watching costs it nothing.

// loopAcceptBatch bounds the clients the loop accepts in one turn, so that
// a burst of connections does not hold up its clients' commands.
const loopAcceptBatch = 32

// evAccept is the interest set of a watched listener.
const evAccept = unix.EPOLLIN | unix.EPOLLONESHOT

// loopListener is a listening socket watched by an event loop. Its fields
// are owned by that loop; armed is shared with the acceptor goroutine.
type loopListener struct {
	a  *acceptor
	l  *eventLoop
	fd int // the loop's duplicate of the listening socket; -1 once closed

	registered bool
	closed     chan struct{} // closed with the duplicate
	// armed is true while the loop watches the socket or has been asked
	// to again; the loop clears it when it stops, the acceptor sets it
	// when it asks.
	armed atomic.Bool
}

// watchOnLoop makes l watch a's listening socket too, if a is clear text,
// and counts the watch in p.acceptors until the loop has closed its
// duplicate (so that Shutdown and a handover, which wait for the
// acceptors, find every client the loop accepted among the sessions).
// The caller holds p.mu, under which those begin to wait.
func (a *acceptor) watchOnLoop(l *eventLoop) {
	if a.tls != nil {
		return
	}
	fd, err := dupSocket(a.lnRaw)
	if err != nil {
		return // the acceptor goroutine alone accepts, as before
	}
	a.p.fds.loopListeners.Add(1)
	a.p.acceptors.Add(1)
	ll := &loopListener{a: a, l: l, fd: fd, closed: make(chan struct{})}
	ll.armed.Store(true)
	a.loop = ll
	if !l.post(ll.register) {
		ll.closeFd()
	}
}

// register puts the socket in the loop's epoll set.
func (ll *loopListener) register() {
	if ll.fd < 0 || ll.a.stopping() {
		return // unwatch, queued behind, closes it
	}
	if err := ll.l.register(ll.fd, ll, evAccept); err != nil {
		ll.armed.Store(false)
		return
	}
	ll.registered = true
}

// onEvent accepts the clients waiting, up to loopAcceptBatch, and watches
// again, or stops watching as above.
func (ll *loopListener) onEvent(uint32) {
	a, p := ll.a, ll.a.p
	for i := 0; i < loopAcceptBatch; i++ {
		if ll.fd < 0 || a.stopping() || p.gate.off.Load() || p.clientsAtCap() {
			ll.armed.Store(false)
			return
		}
		fd, sa, err := unix.Accept4(ll.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
			p.admit(fd, sa, a.tcp)
			continue
		case unix.EAGAIN:
			ll.l.modify(ll.fd, evAccept)
			return
		case unix.EINTR, unix.ECONNABORTED, unix.EPERM, unix.EPROTO:
			continue // as the acceptor: nothing to do for this one
		}
		ll.armed.Store(false) // EMFILE and the like: the acceptor's to handle
		return
	}
	ll.l.modify(ll.fd, evAccept) // more may wait: the next turn takes them
}

// rearm asks the loop to watch again after it stopped; the acceptor
// goroutine calls it when it has accepted every client waiting.
func (a *acceptor) rearm() {
	ll := a.loop
	if ll == nil || !ll.armed.CompareAndSwap(false, true) {
		return
	}
	ll.l.post(func() {
		if ll.registered && ll.fd >= 0 && !a.stopping() {
			ll.l.modify(ll.fd, evAccept)
		}
	})
}

// unwatch stops the loop watching and closes its duplicate, then marks the
// watch done in p.acceptors; a.close calls it.
func (a *acceptor) unwatch() {
	ll := a.loop
	if ll == nil {
		return
	}
	if !ll.l.post(ll.closeFd) {
		ll.closeFd() // the loop has stopped: nothing else uses the socket
	}
}

// closeFd takes the socket out of the loop's epoll set and closes it.
func (ll *loopListener) closeFd() {
	if ll.fd < 0 {
		return
	}
	if ll.registered {
		ll.l.unregister(ll.fd)
		ll.registered = false
	} else {
		_ = unix.Close(ll.fd)
	}
	ll.fd = -1
	ll.a.p.fds.loopListeners.Add(-1)
	close(ll.closed)
	ll.a.p.acceptors.Done()
}

// waitUnwatched waits until the loop has closed its duplicate, after
// close: then the socket no longer listens. Serve's goroutine waits so,
// holding nothing the loop may wait for.
func (a *acceptor) waitUnwatched() {
	if a.loop != nil {
		<-a.loop.closed
	}
}
