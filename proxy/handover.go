package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Handing the clients over to another mcproxy process: the old half of a
// zero-downtime upgrade (the new half is handover_adopt.go, the messages
// handover_wire.go).
//
// The old process gives the new one its listening sockets first, as they
// are, over a Unix socket (SCM_RIGHTS), and then stops accepting. The
// sockets are never closed, so the clients waiting in their accept queues,
// and those whose handshake is under way, are the new process's to accept:
// closing a listener would reset them (with SO_REUSEPORT each listener has
// a queue of its own, and Linux resets it on close unless
// net.ipv4.tcp_migrate_req is on).
//
// Then every client connection goes over at its next command boundary: the
// session runs no new command, answers those it has taken (its backends'
// replies written to the client), and then leaves its loop with the
// socket open; the socket, and the bytes read from it but not parsed yet,
// go to the new process, which goes on reading where this one stopped.
// The client sees nothing. A client that does not reach a boundary within
// HandOver's context (a data block that stalls, a reply it does not read)
// stays, and Shutdown drains it as it would drain any client.

// handed is a client session taken off its loop at a command boundary,
// its socket still open, on its way to the new process.
type handed struct {
	s      *session
	fd     int
	remote string
	state  protocol.ReaderState
}

// handoverWrite bounds one message's write to the new process: a process
// that stops reading its end is given up on, and the clients it did not
// take stay here.
const handoverWrite = 5 * time.Second

// HandOver gives the proxy's listening sockets and client connections to
// the process at the other end of conn, which has called TakeListeners and
// then Adopt. It returns once every client has gone over, nil; or when
// ctx ends first or the new process stops taking them, with an error: the
// clients left then serve on here, and Shutdown drains them. Either way
// the proxy accepts no more clients: call Shutdown after it.
func (p *Proxy) HandOver(ctx context.Context, conn *net.UnixConn) error {
	h := &handoverSender{p: p, conn: conn, wake: make(chan struct{}, 1), done: make(chan struct{}),
		failed: make(chan struct{})}
	p.mu.Lock()
	if p.closed || !p.handover.CompareAndSwap(nil, h) {
		p.mu.Unlock()
		return errors.New("proxy: hand over: the proxy is shutting down or handing over already")
	}
	lns := append([]*acceptor(nil), p.listeners...)
	p.mu.Unlock()
	for _, a := range lns {
		if err := a.handOver(conn); err != nil {
			p.handover.Store(nil) // the clients stay, and this process accepts on
			return fmt.Errorf("proxy: hand over listener %s: %w", a.Addr(), err)
		}
	}
	if err := writeMsg(conn, []byte{msgListenersDone}, -1); err != nil {
		p.handover.Store(nil)
		return fmt.Errorf("proxy: hand over: %w", err)
	}
	// The new process holds the listeners: stop accepting on them here.
	for _, a := range lns {
		a.close()
	}
	p.acceptors.Wait() // a client accepted meanwhile is a session now
	start := time.Now()
	p.mu.Lock()
	clients := len(p.sessions)
	p.mu.Unlock()
	h.open.Store(true)
	go h.run()
	p.eachSession((*session).beginHandOver)

	sessions := make(chan struct{})
	go func() { p.sessWG.Wait(); close(sessions) }()
	var err error
	select {
	case <-sessions:
	case <-h.failed:
		err = fmt.Errorf("proxy: hand over: the new process stopped taking clients: %w", h.err)
	case <-ctx.Done():
		err = fmt.Errorf("proxy: hand over: %w", ctx.Err())
	}
	h.open.Store(false)
	for _, l := range p.loops {
		l.call(func() { // no loop detaches a session after this
			for s := range l.sessions {
				s.cancelHandOver()
			}
		})
	}
	if endErr := h.finish(); err == nil {
		err = endErr
	}
	p.mu.Lock()
	left := len(p.sessions)
	p.mu.Unlock()
	p.log.Info("handed clients over to the new process", zap.Int("clients_before", clients), zap.Int64("clients", h.sent.Load()),
		zap.Int("kept_to_drain", left), zap.Duration("took", time.Since(start)), zap.Error(err))
	return err
}

// handOver sends the listening socket to the new process.
func (a *acceptor) handOver(conn *net.UnixConn) error {
	var err error
	if cerr := a.lnRaw.Control(func(fd uintptr) {
		err = writeMsg(conn, append([]byte{msgListener}, a.Addr().String()...), int(fd))
	}); cerr != nil {
		return cerr
	}
	return err
}

// handoverSender is HandOver's goroutine that sends the sessions the loops
// detach to the new process. Loops only queue (enqueue never blocks them);
// everything else is the sender's.
type handoverSender struct {
	p    *Proxy
	conn *net.UnixConn
	open atomic.Bool // loops may detach sessions (set by HandOver)
	sent atomic.Int64

	mu       sync.Mutex // guards queue and finished
	queue    []handed
	finished bool

	wake   chan struct{} // a queued session or finish; capacity 1
	done   chan struct{} // closed when run returns
	failed chan struct{} // closed when a send failed; err says why
	err    error         // run's, read after failed or done
}

// enqueue queues a detached session for the new process; called on loops.
func (h *handoverSender) enqueue(x handed) {
	h.mu.Lock()
	h.queue = append(h.queue, x)
	h.mu.Unlock()
	h.poke()
}

func (h *handoverSender) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run sends what the loops queue until finish, then the end of the
// handover, and waits for the new process to say it has everything.
func (h *handoverSender) run() {
	defer close(h.done)
	for {
		h.mu.Lock()
		q, fin := h.queue, h.finished
		h.queue = nil
		h.mu.Unlock()
		for _, x := range q {
			h.send(x)
		}
		if len(q) > 0 {
			continue
		}
		if fin {
			break
		}
		<-h.wake
	}
	if h.err != nil {
		return
	}
	if err := h.endHandOver(); err != nil {
		h.fail(err)
	}
}

// endHandOver tells the new process that no more clients come and waits,
// bounded, for its answer: once it has answered it holds every socket.
func (h *handoverSender) endHandOver() error {
	if err := writeMsg(h.conn, []byte{msgEnd}, -1); err != nil {
		return err
	}
	_ = h.conn.SetReadDeadline(time.Now().Add(handoverWrite))
	var b [1]byte
	if _, err := h.conn.Read(b[:]); err != nil {
		return fmt.Errorf("read the new process's acknowledgement: %w", err)
	}
	if b[0] != msgAck {
		return fmt.Errorf("the new process answered %q, not an acknowledgement", b[0])
	}
	return nil
}

// send gives one session to the new process; after a failure it keeps
// it here instead, as a new session that Shutdown will drain.
func (h *handoverSender) send(x handed) {
	if h.err == nil {
		if err := writeSession(h.conn, x); err != nil {
			h.fail(fmt.Errorf("send client %s: %w", x.remote, err))
		}
	}
	p := h.p
	if h.err != nil {
		st := x.state
		p.enroll(x.fd, x.remote, func(s *session) error { return s.rr.Restore(st) })
	} else {
		_ = unix.Close(x.fd) // the new process has its own descriptor
		h.sent.Add(1)
		p.stats.handedOver.Add(1)
	}
	p.sessionEnded(x.s)
}

func (h *handoverSender) fail(err error) {
	if h.err == nil {
		h.err = err
		h.open.Store(false) // the loops stop detaching sessions
		h.p.log.Warn("handover failed; the clients left are drained here", zap.Error(err))
		close(h.failed)
	}
}

// finish stops the sender once the sessions queued so far are sent, and
// returns why the handover failed, if it did.
func (h *handoverSender) finish() error {
	h.mu.Lock()
	h.finished = true
	h.mu.Unlock()
	h.poke()
	<-h.done
	if h.err != nil {
		return fmt.Errorf("proxy: hand over: %w", h.err)
	}
	return nil
}

// beginHandOver makes the session stop taking commands and go to the new
// process at its next command boundary; on the session's loop.
func (s *session) beginHandOver() {
	if s.state != sessReading || s.draining() {
		return
	}
	s.handingOver = true
	s.maybeHandOver()
}

// startedDuringHandOver runs as a session starts on its loop. A session
// taken over with bytes already read runs their commands at once: no
// readiness event will announce them. A session that started after
// HandOver began (accepted as the listeners went over) goes over too; one
// kept after a failed send stays (the handover is closed by then).
func (s *session) startedDuringHandOver() {
	if s.reading() && s.rr.Buffered() > 0 {
		s.readCommands()
	}
	if h := s.p.handover.Load(); h != nil && h.open.Load() && s.reading() {
		s.beginHandOver()
	}
}

// cancelHandOver keeps a session that did not reach a command boundary in
// time: it reads its commands again, here.
func (s *session) cancelHandOver() {
	if s.handingOver {
		s.handingOver = false
		if s.reading() {
			s.readCommands()
		}
	}
}

// maybeHandOver detaches the session and queues it for the new process
// if it is at a command boundary: every command it took is answered and
// written, and none is half read. Its reader state goes along.
func (s *session) maybeHandOver() {
	if !s.handingOver || s.state != sessReading || s.data != nil || s.parked || s.head != nil ||
		s.outOff < len(s.out) {
		return
	}
	h := s.p.handover.Load()
	if h == nil || !h.open.Load() {
		return
	}
	l := s.l
	if s.fd < len(l.handlers) {
		l.handlers[s.fd] = nil
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	s.state = sessEnded // the sender ends it for the proxy (sessionEnded)
	delete(l.sessions, s)
	h.enqueue(handed{s: s, fd: s.fd, remote: s.remote, state: s.rr.State()})
}
