package proxy

import (
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// maxPendingReplies bounds the replies one client may have outstanding. A
// client that pipelines without reading is stopped here rather than making
// the proxy buffer without limit. The memory of those replies is bounded
// by the output limit (output_limit.go).
const maxPendingReplies = 1024

// session is one client connection, owned by one event loop: every field
// is the loop goroutine's, except held (read by HeldReplyBytes) and the
// identity fields set before the session reaches its loop.
//
// When the socket is readable the session parses every command the bytes
// hold (session_read.go) and dispatches each at once (dispatch.go), leaving
// a request in its reply FIFO. Requests complete as their backends answer;
// at the end of the loop's turn the session renders the finished head of
// its FIFO, in order, into one output buffer and writes it in one system
// call (session_write.go). While
// the client is over its output limit (output_limit.go) or its FIFO is
// full, the session stops reading the socket: the command it parsed last
// waits, parked, until there is room.
type session struct {
	p         *Proxy
	l         *eventLoop
	fd        int
	id        uint64
	remote    string // the client's address, for logs
	connIndex int    // which of the loop's connections to each backend to use (eventLoop.adopt)
	state     sessionState
	now       time.Time
	in        fdReader
	rr        *protocol.RequestReader
	req       protocol.Request // the command being dispatched
	owners    []int            // dispatch scratch: backend index per key
	subOf     []int            // dispatch scratch: sub-request per backend
	copySlots []int            // dispatch scratch: each key's next copy (replica_read.go)
	lineHead  []byte           // dispatch scratch: a retrieval line before its keys
	cursors   []int            // render scratch: merge position per sub
	morePiece bool             // dispatch: the retrieval being sent is not the command's last piece
	// copyScratch is the dispatch scratch of pickCopies (replica.go).
	copyScratch [maxCandidates]int

	// Output limit (output_limit.go), fixed when the session starts.
	softLimit, hardLimit int64
	window               int // retrieval keys in flight at most

	held atomic.Int64 // reply memory charged for this client, rendered or not
	// cut records why the session was lost: its client passed the hard
	// output limit. Atomic: tests read it.
	cut atomic.Bool

	head, tail   *request // reply FIFO
	pending      int      // requests in the FIFO
	keysInFlight int      // retrieval keys of FIFO requests not done yet
	out          []byte   // rendered replies; out[outOff:] is not written yet
	outOff       int

	// Reading state.
	data        *request   // a storage command whose data block is arriving
	dataHave    int        // bytes of data's block (with its CRLF) read so far
	parked      bool       // req is parsed but waits for room to be dispatched
	pieceNext   int        // a parked multi-get sent in pieces: its next key
	paused      bool       // EPOLLIN is off: the session does not read for now
	wantWrite   bool       // EPOLLOUT is on: output is waiting for room
	drainSince  time.Time  // when Shutdown began draining the session; zero until then (drain.go)
	lastRead    time.Time  // when bytes last came from the client
	lingerClose bool       // half-close and linger once everything is written (drain.go)
	lingerUntil time.Time  // when a lingering session closes (drain.go)
	dirty       bool       // on the loop's list for the end of the turn
	budget      turnBudget // what it may still do this turn (turn_budget.go)
	yielded     bool       // on the loop's list to resume next turn
	handingOver bool       // runs no new command: it goes to another process at the next command boundary (handover.go)
	// moveTo is the loop the session is to move to once it is quiet;
	// nil while it stays (loop_move.go).
	moveTo *eventLoop

	// Warm-up (warm.go): fence is the delete of an old copy that the
	// session's sends wait behind; waiting holds them, in order.
	fence   *request
	waiting []*request
}

// sessionState is where a session is in its life. It only moves forward,
// through these states in this order, though it may skip some; the
// methods named with each state are its only ways in.
type sessionState uint8

const (
	// sessReading: the session reads, dispatches and answers commands.
	sessReading sessionState = iota
	// sessAnswering: it reads no more commands (quit, the end of the
	// stream, an error, the end of a drain, the idle timeout: stopReading)
	// and writes the replies it owes.
	sessAnswering
	// sessQuitting: the reply FIFO reached quit (renderReady): what is
	// rendered is still written, nothing after quit is.
	sessQuitting
	// sessLingering: every reply is written and the socket half-closed;
	// what the client still sends is read and dropped (startLinger,
	// drain.go).
	sessLingering
	// sessLost: the socket is closed (closeFd: the client went away or
	// was cut off, or the session is ending); nothing more is written,
	// and requests still at the backends are dropped as they finish.
	sessLost
	// sessEnded: over, unregistered and forgotten by the proxy (end).
	sessEnded
)

// reading reports whether the session still reads commands.
func (s *session) reading() bool { return s.state == sessReading }

func newSession(p *Proxy, l *eventLoop, fd int, id uint64, remote string) *session {
	s := &session{
		p:         p,
		l:         l,
		fd:        fd,
		id:        id,
		remote:    remote,
		softLimit: int64(p.opts.ClientOutputLimit),
		hardLimit: hardLimitFactor * int64(p.opts.ClientOutputLimit),
		window:    p.opts.outputWindow(),
	}
	s.in.fd = fd
	s.in.budgeted = true
	s.rr = protocol.NewRequestReader(&s.in, p.opts.MaxItemSize)
	return s
}

// start registers the session with its loop; it runs on the loop.
func (s *session) start() {
	l := s.l
	s.lastRead = l.now
	if l.quit {
		s.end()
		return
	}
	if err := l.register(s.fd, s, evRead); err != nil {
		s.p.log.Warn("register client", zap.Error(err))
		s.end()
		return
	}
	l.adopt(s)
	if s.p.opts.ClientIdleTimeout > 0 {
		l.timers.wantScan(l.now)
	}
	if s.p.draining.Load() {
		s.drain()
	}
	s.startedDuringHandOver()
}

// onEvent handles the socket's readiness.
func (s *session) onEvent(ev uint32) {
	if s.state >= sessLost {
		return
	}
	if s.state == sessLingering {
		s.lingerRead()
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		s.in.ready()
		s.readCommands()
	}
	if ev&unix.EPOLLOUT != 0 && s.state < sessLost {
		s.l.markSession(s)
	}
}

// setInterest applies paused and wantWrite to the epoll set.
func (s *session) setInterest() {
	var ev uint32
	if !s.paused && s.reading() || s.state == sessLingering {
		ev |= evRead
	}
	if s.wantWrite {
		ev |= evWrite
	}
	s.l.modify(s.fd, ev)
}

// lost handles a client that can no longer be written to: its pending
// output is dropped and the socket closed; requests still out at the
// backends finish and are thrown away.
func (s *session) lost() {
	s.held.Add(-int64(len(s.out) - s.outOff))
	s.out, s.outOff = nil, 0
	s.stopReading()
	s.closeFd()
}

// maybeEnd ends the session once nothing more will be read, every request
// has finished and every reply is written (or the client is gone).
func (s *session) maybeEnd() {
	if s.state == sessReading || s.state == sessEnded || s.head != nil || s.state < sessLost && s.outOff < len(s.out) {
		return
	}
	if s.state == sessLost {
		s.end()
		return
	}
	if s.lingerClose || s.draining() {
		s.startLinger()
		return
	}
	s.end()
}

// closeFd closes the client socket: the session is lost, and may live on
// until its requests have finished.
func (s *session) closeFd() {
	if s.state < sessLost {
		s.state = sessLost
		s.l.unregister(s.fd)
	}
}

// end closes the session for good.
func (s *session) end() {
	if s.state == sessEnded {
		return
	}
	s.closeFd()
	s.state = sessEnded
	s.l.forget(s)
	if s.cut.Load() {
		s.logCutOff()
	}
	s.p.sessionEnded(s)
}

// checkDeadlines runs the client deadlines that are due: the idle
// timeout, the quiet period of a drain, the end of a linger.
func (s *session) checkDeadlines(now time.Time) {
	if s.state == sessEnded {
		return
	}
	// The drain's quiet period and the idle timeout measure the client's
	// silence, which is only heard while the session listens: not while
	// it is paused (it waits for room: replies from a backend, the client
	// reading its own; resume restarts the clock), nor while it has
	// yielded with commands read and not yet run.
	listening := !s.paused && !s.yielded
	switch {
	case s.state == sessLingering:
		if !now.Before(s.lingerUntil) {
			s.end()
			return
		}
	case !s.reading():
		return
	case s.draining():
		if listening && now.Sub(latest(s.lastRead, s.drainSince)) >= drainQuiet {
			s.stopReading()
			return
		}
	case s.p.opts.ClientIdleTimeout > 0:
		if listening && now.Sub(s.lastRead) >= s.p.opts.ClientIdleTimeout {
			s.stopReading()
			return
		}
	default:
		return
	}
	s.l.timers.wantScan(now)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
