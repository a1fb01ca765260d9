package proxy

import (
	"errors"
	"io"
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

// maxRetainedOutput caps the output buffer a session keeps between
// replies, so one large reply does not pin its size for the connection's
// life.
const maxRetainedOutput = 64 << 10

// session is one client connection, owned by one event loop: every field
// is the loop goroutine's, except held (read by HeldReplyBytes) and the
// identity fields set before the session reaches its loop.
//
// When the socket is readable the session parses every command the bytes
// hold and dispatches each at once (dispatch.go), leaving a request in its
// reply FIFO. Requests complete as their backends answer; at the end of
// the loop's turn the session renders the finished head of its FIFO, in
// order, into one output buffer and writes it in one system call. While
// the client is over its output limit (output_limit.go) or its FIFO is
// full, the session stops reading the socket: the command it parsed last
// waits, parked, until there is room.
type session struct {
	p         *Proxy
	l         *eventLoop
	fd        int
	id        uint64
	remote    string // the client's address, for logs
	connIndex int    // which of the loop's connections to each backend to use
	now       time.Time
	in        fdReader
	rr        *protocol.RequestReader
	req       protocol.Request // the command being dispatched
	owners    []int            // dispatch scratch: backend index per key
	subOf     []int            // dispatch scratch: sub-request per backend
	lineHead  []byte           // dispatch scratch: a retrieval line before its keys
	cursors   []int            // render scratch: merge position per sub
	morePiece bool             // dispatch: the retrieval being sent is not the command's last piece

	// Output limit (output_limit.go), fixed when the session starts.
	softLimit, hardLimit int64
	window               int // retrieval keys in flight at most

	held atomic.Int64 // reply memory charged for this client, rendered or not
	cut  atomic.Bool  // over the hard limit: disconnected, replies dropped (atomic for tests)
	gone bool         // the client can no longer be written to

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
	readerDone  bool       // no more commands will be read
	quit        bool       // quit was rendered: close once out is written
	drainSince  time.Time  // when Shutdown began draining the session; zero until then (drain.go)
	lastRead    time.Time  // when bytes last came from the client
	lingerClose bool       // half-close and linger once everything is written (drain.go)
	lingerUntil time.Time  // lingering: the half-close is done; close by then
	closed      bool       // fd is closed
	ended       bool       // the session is over and unregistered
	dirty       bool       // queued for the end-of-turn flush
	budget      turnBudget // what it may still do this turn (turn_budget.go)
	yielded     bool       // on the loop's list to resume next turn
}

func newSession(p *Proxy, l *eventLoop, fd int, id uint64, remote string) *session {
	s := &session{
		p:      p,
		l:      l,
		fd:     fd,
		id:     id,
		remote: remote,
		// Loops are dealt sessions by id (Proxy.accept); the id's share
		// within its loop picks the connection, so a loop uses all of
		// its connections to a backend.
		connIndex: int(id / uint64(len(p.loops)) % uint64(p.connsPerLoop)),
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
	l.sessions[s] = struct{}{}
	if s.p.opts.ClientIdleTimeout > 0 {
		l.timers.wantScan(l.now)
	}
	if s.p.draining.Load() {
		s.drain()
	}
}

// onEvent handles the socket's readiness.
func (s *session) onEvent(ev uint32) {
	if s.closed {
		return
	}
	if s.lingerUntil != (time.Time{}) {
		s.lingerRead()
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		s.in.ready()
		s.readCommands()
	}
	if ev&unix.EPOLLOUT != 0 && !s.closed {
		s.l.markSession(s)
	}
}

// readCommands parses and dispatches commands until the socket has no more
// bytes, the session has no room for another reply, it stops reading, or
// it has used up its budget for this turn (then it yields, and resumes
// next turn).
func (s *session) readCommands() {
	s.beginTurn()
	for !s.readerDone && !s.closed {
		if s.spent() {
			s.yield()
			return
		}
		if s.data != nil {
			if !s.continueData() {
				return
			}
			continue
		}
		if s.parked {
			if !s.dispatchParked() {
				s.pause()
				return
			}
			continue
		}
		if !s.hasRoom() {
			s.pause()
			return
		}
		before := s.in.n
		err := s.rr.Next(&s.req)
		s.countRead(before)
		if err == protocol.ErrWouldBlock {
			s.resume()
			if s.in.budget <= 0 {
				s.yield() // the socket may hold more than the budget let it read
			}
			return
		}
		s.budget.reqs--
		s.now = s.l.now
		if err == nil {
			if !s.dispatch(&s.req) {
				s.stopReading()
			}
			continue
		}
		s.readError(err)
	}
}

// readError handles what RequestReader.Next refused.
func (s *session) readError(err error) {
	var fe *protocol.ForeignError
	if errors.As(err, &fe) {
		s.p.stats.protocolRejects[fe.Kind].Add(1)
		s.p.log.Debug("client speaks another protocol; closing", zap.Stringer("protocol", fe.Kind),
			zap.String("client", s.remote))
		if len(fe.Reply) > 0 {
			s.enqueueLocalBytes(fe.Reply)
			s.lingerClose = true
		}
		s.stopReading() // what is owed is sent, then the connection closes
		return
	}
	var re *protocol.ReplyError
	if !errors.As(err, &re) {
		if !errors.Is(err, io.EOF) {
			s.p.log.Debug("client read", zap.String("client", s.remote), zap.Error(err))
		}
		s.stopReading()
		return
	}
	s.p.stats.clientErrors.Add(1)
	if re == protocol.ErrTooLarge && (s.req.Op == protocol.OpSet || s.req.Op == protocol.OpMetaSet) {
		// memcached drops the old value when a set is refused as too
		// large, so that a stale value is not served; so do we.
		s.dropStaleValue(s.req.Key())
	}
	if !s.req.NoReply || re == protocol.ErrLineTooLong {
		s.enqueueLocal(re.Line)
	}
	if re == protocol.ErrLineTooLong {
		s.stopReading() // the rest of the stream cannot be parsed
	}
}

// hasRoom reports whether the session may take another command: its FIFO
// is not full, the client is under its soft output limit, and no metadump
// of its is under way (metadump.go).
func (s *session) hasRoom() bool {
	return s.pending < maxPendingReplies && s.held.Load() < s.softLimit && (s.tail == nil || s.tail.dump == nil)
}

// keysFit reports whether a retrieval of n keys may be sent now: the keys
// in flight stay within the window (a single command of more keys than the
// window is sent in pieces, each of which fits an empty window).
func (s *session) keysFit(n int) bool {
	return s.keysInFlight == 0 || s.keysInFlight+n <= s.window
}

// pause stops reading the socket until there is room again.
func (s *session) pause() {
	if !s.paused && !s.closed {
		s.paused = true
		s.setInterest()
	}
}

// resume reads the socket again.
func (s *session) resume() {
	if s.paused && !s.closed {
		s.paused = false
		s.lastRead = s.l.now // the idle clock stood still while paused
		s.setInterest()
	}
}

// setInterest applies paused and wantWrite to the epoll set.
func (s *session) setInterest() {
	var ev uint32
	if !s.paused && !s.readerDone || s.lingerUntil != (time.Time{}) {
		ev |= evRead
	}
	if s.wantWrite {
		ev |= evWrite
	}
	s.l.modify(s.fd, ev)
}

// stopReading ends reading for good: quit, end of stream, an error, or
// the end of a drain. The session closes once its replies are out.
func (s *session) stopReading() {
	if s.readerDone {
		return
	}
	s.readerDone = true
	s.parked = false
	if s.data != nil {
		s.data.release()
		s.data = nil
	}
	if !s.closed {
		s.setInterest()
	}
	s.l.markSession(s)
}

// enqueue appends r to the reply FIFO. The caller has checked for room.
func (s *session) enqueue(r *request) {
	s.pending++
	s.keysInFlight += r.nkeys
	if s.tail == nil {
		s.head = r
	} else {
		s.tail.next = r
	}
	s.tail = r
}

// enqueueLocal queues a reply line the proxy makes itself.
func (s *session) enqueueLocal(line string) {
	r := newRequest(s, protocol.OpNone)
	r.local = append(append(r.local, line...), "\r\n"...)
	s.enqueue(r)
	r.finish()
}

// enqueueLocalBytes queues a multi-line reply the proxy made itself.
func (s *session) enqueueLocalBytes(b []byte) {
	r := newRequest(s, protocol.OpNone)
	r.local = append(r.local, b...)
	s.enqueue(r)
	r.finish()
}

// requestDone is called when a request of this session finishes.
func (s *session) requestDone(r *request) {
	r.done = true
	s.keysInFlight -= r.nkeys
	s.l.markSession(s)
}

// endTurn is the end-of-turn flush of a session marked dirty.
func (s *session) endTurn() {
	s.dirty = false
	s.flush()
}

// flush renders the finished head of the FIFO, writes what the socket
// takes, and reads again if that made room. It runs at the end of a turn.
func (s *session) flush() {
	if s.ended {
		return
	}
	for {
		s.renderReady()
		s.writeOut()
		if s.closed || s.wantWrite || s.head == nil || !s.head.done && !s.head.dumpReady() {
			break // the socket is full, or nothing more is ready
		}
	}
	if s.ended {
		return
	}
	if (s.paused || s.parked) && !s.readerDone && !s.closed {
		s.readCommands()
	}
	s.maybeEnd()
}

// outputHighWater bounds the rendered output a session holds unwritten.
// Rendering copies a reply into the output buffer; past this much, finished
// replies wait in the FIFO, in the memory they were read into (which the
// output limit already counts), until the socket takes what is rendered.
// So a client that reads slowly costs its replies once, not twice, and the
// output buffer never grows past one reply beyond this.
const outputHighWater = 256 << 10

// renderReady renders the finished head of the FIFO, in order, into the
// output buffer, up to outputHighWater.
func (s *session) renderReady() {
	s.compactOut()
	for r := s.head; r != nil && (s.gone || len(s.out)-s.outOff < outputHighWater); r = s.head {
		if r.dump != nil && !s.streamDump(r) {
			break // the rest of the dump has yet to arrive, or to fit (metadump.go)
		}
		if !r.done {
			break
		}
		s.head = r.next
		if s.head == nil {
			s.tail = nil
		}
		s.pending--
		if l := s.p.latency; l != nil && r.op != protocol.OpNone && !r.more {
			l.observe(r.op, r.start)
		}
		charged := r.chargedBytes()
		if !s.gone && !s.quit {
			n := len(s.out)
			s.out = s.render(s.out, r)
			charged -= int64(len(s.out) - n) // rendered bytes stay charged until written
			if r.op == protocol.OpQuit {
				s.quit = true // everything before quit is still owed to the client
			}
		}
		if charged != 0 {
			s.held.Add(-charged)
		}
		r.release()
	}
}

// compactOut moves the unwritten output to the front of its buffer, so
// that what was written is not kept while a client that never quite catches
// up goes on reading.
func (s *session) compactOut() {
	if s.outOff == 0 {
		return
	}
	n := copy(s.out, s.out[s.outOff:])
	s.out, s.outOff = s.out[:n], 0
}

// writeOut writes the rendered replies.
func (s *session) writeOut() {
	if s.closed || s.outOff == len(s.out) {
		s.setWantWrite(false)
		return
	}
	n, err := writeSome(s.fd, s.out[s.outOff:])
	if n > 0 {
		s.outOff += n
		s.held.Add(-int64(n))
		s.p.stats.bytesWritten.Add(uint64(n))
	}
	if err != nil {
		s.p.log.Debug("client write", zap.String("client", s.remote), zap.Error(err))
		s.lost()
		return
	}
	if s.outOff < len(s.out) {
		s.setWantWrite(true)
		return
	}
	s.out, s.outOff = s.out[:0], 0
	if cap(s.out) > maxRetainedOutput {
		s.out = nil
	}
	s.setWantWrite(false)
}

func (s *session) setWantWrite(on bool) {
	if s.wantWrite != on && !s.closed {
		s.wantWrite = on
		s.setInterest()
	}
}

// lost handles a client that can no longer be written to: its pending
// output is dropped and the socket closed; requests still out at the
// backends finish and are thrown away.
func (s *session) lost() {
	s.gone = true
	s.held.Add(-int64(len(s.out) - s.outOff))
	s.out, s.outOff = nil, 0
	s.stopReading()
	s.closeFd()
}

// maybeEnd ends the session once nothing more will be read, every request
// has finished and every reply is written (or the client is gone).
func (s *session) maybeEnd() {
	if s.ended || !s.readerDone && !s.gone || s.head != nil || !s.closed && s.outOff < len(s.out) {
		return
	}
	if s.closed || s.gone {
		s.end()
		return
	}
	if s.lingerClose || s.draining() {
		s.startLinger()
		return
	}
	s.end()
}

// closeFd closes the client socket; the session may live on until its
// requests have finished.
func (s *session) closeFd() {
	if !s.closed {
		s.closed = true
		s.l.unregister(s.fd)
	}
}

// end closes the session for good.
func (s *session) end() {
	if s.ended {
		return
	}
	s.ended = true
	s.closeFd()
	delete(s.l.sessions, s)
	if s.cut.Load() {
		s.logCutOff()
	}
	s.p.sessionEnded(s)
}

// continueData reads more of the data block of the storage command being
// read; it returns false when the socket has no more bytes for now.
func (s *session) continueData() bool {
	r := s.data
	before := s.in.n
	n, err := s.rr.ContinueData(r.out[len(r.out)-s.req.Bytes-2:], s.dataHave)
	s.countRead(before)
	s.dataHave = n
	if err == protocol.ErrWouldBlock {
		s.resume()
		if s.in.budget <= 0 {
			s.yield()
		}
		return false
	}
	s.data = nil
	s.storageArrived(r, err)
	return true
}

// countRead notes bytes read from the client since the reader had read
// before bytes in all.
func (s *session) countRead(before uint64) {
	if n := s.in.n - before; n > 0 {
		s.lastRead = s.l.now
		s.p.stats.bytesRead.Add(n)
	}
}

// checkDeadlines runs the client deadlines that are due: the idle
// timeout, the quiet period of a drain, the end of a linger.
func (s *session) checkDeadlines(now time.Time) {
	if s.ended {
		return
	}
	// The drain's quiet period and the idle timeout measure the client's
	// silence, which is only heard while the session listens: not while
	// it is paused (it waits for room: replies from a backend, the client
	// reading its own; resume restarts the clock), nor while it has
	// yielded with commands read and not yet run.
	listening := !s.paused && !s.yielded
	switch {
	case s.lingerUntil != (time.Time{}):
		if !now.Before(s.lingerUntil) {
			s.end()
			return
		}
	case s.readerDone:
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
