package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Accepting clients.
//
// A new client costs the proxy one file descriptor. The acceptor calls
// accept4(SOCK_NONBLOCK|SOCK_CLOEXEC) on the listening socket itself and
// hands the socket it gets to an event loop as it is; net.Listener.Accept
// would register the socket with the Go runtime's poller, which the loops
// do not use, and taking it from there costs a second descriptor for a
// moment (a dup), which is exactly what runs out when descriptors do.
//
// The acceptor waits for the listening socket to become readable through
// the runtime poller, on a duplicate of the listener's socket (the net
// package refuses to wait on a listener's raw connection): one descriptor
// for the life of the listener, none per client. The accept itself runs on
// the caller's listener, so a listener the caller closes accepts nothing
// more.
//
// When descriptors run out, accepting stops, as memcached's does at EMFILE
// (its listen_disabled_num): the clients that connect meanwhile wait in
// the kernel's listen backlog, connected but not yet accepted, and are
// accepted as soon as a descriptor is released (listenGate). Accepting
// also stops, the same way and before the process limit is reached, when
// the clients hold every descriptor that the reserve for backends, health
// probes and listeners leaves them (descriptorBudget): a backend that
// restarts must always be able to be dialed again, whatever the clients do.

// relistenInterval bounds a pause in accepting when no descriptor release
// is seen: the acceptor tries again after it in any case, for the
// descriptors freed out of the proxy's sight (a failed backend dial, a
// health probe, the admin endpoint, or, at ENFILE, another process).
const relistenInterval = time.Second

// listenerCheckInterval bounds how long a listener closed by Serve's
// caller (rather than by Shutdown) goes unnoticed while no client connects.
const listenerCheckInterval = time.Second

// acceptor accepts clients on one listener for Serve, on Serve's goroutine.
type acceptor struct {
	p     *Proxy
	ln    net.Listener
	lnRaw syscall.RawConn // the caller's listener: the accept runs on it
	file  *os.File        // a duplicate of ln's socket, for the runtime poller
	raw   syscall.RawConn // file's
	tcp   bool            // set TCP_NODELAY on what it accepts
	tls   *tlsServer      // a TLS listener's handshakes; nil for clear text
	loop  *loopListener   // the event loop watching the socket too, or nil (accept_loop.go)
	stop  chan struct{}   // closed by close
	once  sync.Once
}

// newAcceptor prepares to accept on ln, which must be a socket listener
// (*net.TCPListener, *net.UnixListener): the proxy accepts on the socket
// itself.
func newAcceptor(p *Proxy, ln net.Listener) (*acceptor, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("listener %T on %s has no socket to accept on: "+
			"Serve takes a *net.TCPListener or *net.UnixListener", ln, ln.Addr())
	}
	lnRaw, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("listener on %s: %w", ln.Addr(), err)
	}
	listening := 0
	var opErr error
	if err := lnRaw.Control(func(fd uintptr) {
		listening, opErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	}); err != nil {
		opErr = err
	}
	if opErr != nil {
		return nil, fmt.Errorf("listener on %s: %w", ln.Addr(), opErr)
	}
	if listening == 0 {
		return nil, fmt.Errorf("%T on %s is not a listening socket", ln, ln.Addr())
	}
	dup, err := dupSocket(lnRaw)
	if err != nil {
		return nil, fmt.Errorf("listener on %s: %w", ln.Addr(), err)
	}
	// A non-blocking descriptor goes on the runtime poller, so that a read
	// of its raw connection parks the goroutine until it is readable.
	f := os.NewFile(uintptr(dup), "listener "+ln.Addr().String())
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("listener on %s: %w", ln.Addr(), err)
	}
	_, tcp := ln.Addr().(*net.TCPAddr)
	p.fds.listeners.Add(1)
	return &acceptor{p: p, ln: ln, lnRaw: lnRaw, file: f, raw: raw, tcp: tcp, stop: make(chan struct{})}, nil
}

// Addr is the listener's address.
func (a *acceptor) Addr() net.Addr { return a.ln.Addr() }

// close stops the acceptor: the caller's listener and the duplicate close,
// which wakes the acceptor if it waits for a client or for a descriptor.
func (a *acceptor) close() {
	a.once.Do(func() {
		close(a.stop)
		a.unwatch()
		_ = a.ln.Close()
		_ = a.file.Close()
		a.p.fds.listeners.Add(-1)
	})
}

// stopping reports whether close has begun.
func (a *acceptor) stopping() bool {
	select {
	case <-a.stop:
		return true
	default:
		return false
	}
}

// run accepts clients until the listener closes. It returns nil after
// Shutdown, and an error when the listener fails or its caller closed it.
func (a *acceptor) run() error {
	defer a.close()
	p := a.p
	for {
		if p.clientsAtCap() {
			// Stop accepting, as at EMFILE, until a client leaves.
			seq := p.gate.released.Load()
			if !p.clientsAtCap() {
				continue
			}
			p.gate.disable("the clients hold the descriptors not reserved for backends", p)
			if end, err := a.pause(seq); end {
				return err
			}
			continue
		}
		seq := p.gate.released.Load()
		fd, sa, err := a.accept()
		switch {
		case err == nil && a.tls != nil:
			a.tls.start(fd, sa, a.tcp) // tls_listen.go
		case err == nil:
			p.admit(fd, sa, a.tcp)
		case errors.Is(err, os.ErrDeadlineExceeded):
			if end, err := a.ended(); end {
				return err
			}
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE),
			errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			p.gate.disable("accept: "+err.Error(), p)
			if end, err := a.pause(seq); end {
				return err
			}
		case errors.Is(err, unix.ECONNABORTED), errors.Is(err, unix.EPERM), errors.Is(err, unix.EPROTO):
			// The client left before it was accepted, or a firewall
			// refused it: nothing to do for this one.
		default:
			if end, err := a.ended(); end {
				return err
			}
			return fmt.Errorf("accept on %s: %w", a.ln.Addr(), err)
		}
	}
}

// accept waits through the runtime poller until a client is waiting and
// accepts it. It returns os.ErrDeadlineExceeded after
// listenerCheckInterval without a client.
func (a *acceptor) accept() (int, unix.Sockaddr, error) {
	fd, sa, acceptErr := -1, unix.Sockaddr(nil), error(nil)
	_ = a.file.SetReadDeadline(time.Now().Add(listenerCheckInterval))
	err := a.raw.Read(func(uintptr) bool {
		if err := a.lnRaw.Control(func(lfd uintptr) {
			for {
				fd, sa, acceptErr = unix.Accept4(int(lfd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
				if acceptErr != unix.EINTR {
					return
				}
			}
		}); err != nil {
			acceptErr = err // the caller closed its listener
			return true
		}
		if acceptErr == unix.EAGAIN {
			// Every waiting client is in: a pause in accepting is over.
			a.p.gate.enable()
			a.rearm()
			return false
		}
		return true
	})
	if err != nil {
		return -1, nil, err
	}
	if acceptErr != nil {
		return -1, nil, fmt.Errorf("accept4: %w", acceptErr)
	}
	return fd, sa, nil
}

// pause waits for a descriptor to be released since the release count was
// seq (listenGate.wait); it reports whether the listener was closed
// meanwhile, as ended does.
func (a *acceptor) pause(seq uint64) (bool, error) {
	a.p.gate.wait(seq, a.stop)
	return a.ended()
}

// ended reports whether the listener was closed, and what Serve returns
// then: nil when Shutdown closed it, an error when Serve's caller did.
func (a *acceptor) ended() (bool, error) {
	select {
	case <-a.stop:
		return true, nil
	default:
	}
	if a.lnRaw.Control(func(uintptr) {}) != nil {
		return true, fmt.Errorf("accept on %s: %w", a.ln.Addr(), net.ErrClosed)
	}
	return false, nil
}

// tooManyConnections is memcached's own answer when -c is exceeded.
const tooManyConnections = "ERROR Too many open connections\r\n"

// admit hands a new client socket to an event loop, round robin over the
// awake ones (loop_balance.go), or refuses it past limits.max_connections
// as memcached does.
func (p *Proxy) admit(fd int, sa unix.Sockaddr, tcp bool) {
	if p.stats.currConnections.Load() >= int64(p.opts.MaxConnections) {
		p.stats.rejectedConnections.Add(1)
		// A new socket's send buffer is empty: the line fits.
		_, _ = rawWrite(fd, []byte(tooManyConnections))
		_ = unix.Close(fd)
		p.gate.release()
		return
	}
	if tcp {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	p.enroll(fd, sockaddrString(sa), nil)
}

// enroll makes a session of the client socket fd on an event loop, round
// robin, and starts it there; prepare, if not nil, readies the session
// before it starts (an adopted client's reader state, handover_adopt.go).
// The socket is closed, and no session made, after Shutdown or when
// prepare fails.
func (p *Proxy) enroll(fd int, remote string, prepare func(*session) error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = unix.Close(fd)
		return
	}
	p.nextID++
	awake := p.awakeLoops()
	l := awake[p.nextID%uint64(len(awake))]
	s := newSession(p, l, fd, p.nextID, remote)
	if prepare != nil {
		if err := prepare(s); err != nil {
			p.mu.Unlock()
			p.log.Warn("client not taken in", zap.String("client", remote), zap.Error(err))
			_ = unix.Close(fd)
			return
		}
	}
	p.sessions[s] = struct{}{}
	p.sessWG.Add(1)
	p.mu.Unlock()
	p.stats.currConnections.Add(1)
	p.stats.totalConnections.Add(1)
	if !l.post(s.start) {
		s.state = sessEnded
		_ = unix.Close(fd)
		p.sessionEnded(s)
	}
}

// sockaddrString spells a client's address as net.Conn.RemoteAddr would.
func sockaddrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrUnix:
		if sa.Name == "" {
			return "@"
		}
		return sa.Name
	}
	return "?"
}

// listenGate is the proxy's accepting state, shared by its acceptors: on,
// or off for an episode that begins at EMFILE (or the client cap) and ends
// when an accept finds no client left waiting, so that a proxy that takes
// in its backlog one freed descriptor at a time has one episode, logged
// once. It counts the episodes and their time as memcached's
// listen_disabled_num and time_in_listen_disabled_us. (memcached ends an
// episode each time it listens again, 10 ms after a connection closed, and
// counts the next EMFILE as a new one.)
//
// Sessions and backend connections call release when they give a
// descriptor back, from any goroutine; an acceptor that stopped waits for
// one (wait).
type listenGate struct {
	released atomic.Uint64 // descriptors given back, ever
	waiters  atomic.Int32  // acceptors in wait
	off      atomic.Bool   // an episode is under way; written under mu

	mu     sync.Mutex
	wake   chan struct{} // closed by release while acceptors wait
	since  time.Time     // the episode's start
	reason string        // what began it, for the log
	st     *counters     // listenDisabled, listenDisabledMicros
	log    *zap.Logger
}

func (g *listenGate) init(st *counters, log *zap.Logger) {
	g.wake = make(chan struct{})
	g.st, g.log = st, log
}

// release notes a descriptor given back and wakes the acceptors waiting
// for one. While none waits it costs one atomic add and one load.
func (g *listenGate) release() {
	g.released.Add(1)
	if g.waiters.Load() == 0 {
		return
	}
	g.mu.Lock()
	close(g.wake)
	g.wake = make(chan struct{})
	g.mu.Unlock()
}

// wait blocks until a descriptor has been released since the release count
// was seq, relistenInterval has passed, or stop closes.
//
// No release is missed between the caller's failed accept and the wait:
// the waiter registers before it compares the count, and release bumps
// the count before it looks for waiters.
func (g *listenGate) wait(seq uint64, stop <-chan struct{}) {
	g.mu.Lock()
	wake := g.wake
	g.mu.Unlock()
	g.waiters.Add(1)
	defer g.waiters.Add(-1)
	if g.released.Load() != seq {
		return
	}
	t := time.NewTimer(relistenInterval)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-stop:
	}
}

// disable begins an episode of not accepting, unless one is under way.
func (g *listenGate) disable(reason string, p *Proxy) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.off.Load() {
		return
	}
	g.off.Store(true)
	g.since, g.reason = time.Now(), reason
	g.st.listenDisabled.Add(1)
	b := p.descriptorBudget()
	g.log.Warn("stopped accepting clients until a descriptor is released; new clients wait in the listen backlog",
		zap.String("reason", reason), zap.Int64("clients", p.stats.currConnections.Load()),
		zap.Int("client_cap", b.clientCap()), zap.Int("descriptor_limit", b.limit),
		zap.Int("reserved_descriptors", b.reserved()))
}

// enable ends the episode under way, if any: accepting works again.
func (g *listenGate) enable() {
	if !g.off.Load() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.off.Load() {
		return
	}
	d := time.Since(g.since)
	g.off.Store(false)
	g.st.listenDisabledMicros.Add(uint64(d.Microseconds()))
	g.log.Info("accepting clients again", zap.Duration("stopped_for", d), zap.String("reason", g.reason))
}

// disabledStats returns the episodes of not accepting and the time spent
// in them, the one under way included, and whether accepting is on. total
// selects the counts since start (metrics) over those since "stats reset".
func (g *listenGate) disabledStats(total bool) (num, micros uint64, accepting bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	num, micros = g.st.listenDisabled.Load(), g.st.listenDisabledMicros.Load()
	if total {
		num, micros = g.st.listenDisabled.Total(), g.st.listenDisabledMicros.Total()
	}
	off := g.off.Load()
	if off {
		micros += uint64(time.Since(g.since).Microseconds())
	}
	return num, micros, !off
}
