package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
)

// maxPendingReplies bounds the replies one client may have outstanding. A
// client that pipelines without reading is stopped here rather than making
// the proxy buffer without limit. The memory of those replies is bounded
// by the output limit (output_limit.go).
const maxPendingReplies = 1024

// session is one client connection. Its reader parses every command as soon
// as it arrives and dispatches it at once, leaving a request in the reply
// FIFO; its writer writes replies in FIFO order as they complete and flushes
// the socket only when the next reply is not ready yet. That is where
// batching comes from: many replies leave in one write. The reader waits
// before dispatching while the client is over its output limit
// (output_limit.go): held is charged by the backend readers and released by
// the writer.
type session struct {
	p         *Proxy
	conn      net.Conn
	connIndex int       // which connection of each backend pool to use
	now       time.Time // when the command being dispatched was read
	rr        *protocol.RequestReader
	req       protocol.Request // parse scratch space
	owners    []int            // dispatch scratch: backend index per key
	subOf     []int            // dispatch scratch: sub-request per backend
	lineHead  []byte           // dispatch scratch: a retrieval line before its keys
	cursors   []int            // writer scratch: merge position per sub
	morePiece bool             // dispatch: the retrieval being sent is not the command's last piece

	// Output limit (output_limit.go), fixed when the session starts.
	softLimit, hardLimit int64
	window               int // retrieval keys in flight at most

	held atomic.Int64 // reply memory charged for this client
	cut  atomic.Bool  // over the hard limit: disconnected, replies dropped
	gone atomic.Bool  // the client can no longer be written to

	mu           sync.Mutex
	head, tail   *request // reply FIFO
	pending      int      // requests in the FIFO
	keysInFlight int      // retrieval keys of FIFO requests not done yet
	readerDone   bool
	waitSpace    bool
	wake         chan struct{} // writer: a request is done or the reader ended
	space        chan struct{} // reader: the FIFO has room again

	// readState is readOpen, readDraining or readStopped; it only moves
	// forward. Shutdown and the writer set it, clientReader obeys it.
	readState atomic.Int32
	// lingerClose, set by the reader before it ends, asks for the gentle
	// close of closeDrained: the last reply is one the client must read.
	lingerClose bool
}

func newSession(p *Proxy, conn net.Conn, id uint64) *session {
	s := &session{
		p:         p,
		conn:      conn,
		connIndex: int(id % uint64(max(p.opts.Connections, 1))),
		softLimit: int64(p.opts.ClientOutputLimit),
		hardLimit: hardLimitFactor * int64(p.opts.ClientOutputLimit),
		window:    p.opts.outputWindow(),
		wake:      make(chan struct{}, 1),
		space:     make(chan struct{}, 1),
	}
	s.rr = protocol.NewRequestReader(&clientReader{s: s}, p.opts.MaxItemSize)
	return s
}

// clientReader counts bytes read and applies the read deadline of the
// session's read state: the idle timeout while open, the quiet period while
// draining, at once when stopped.
type clientReader struct{ s *session }

func (cr *clientReader) Read(b []byte) (int, error) {
	s := cr.s
	st := s.readState.Load()
	s.setReadDeadline(st)
	// Shutdown or the writer may have moved the state on, and set their
	// deadline, between the load and ours; theirs must win.
	if now := s.readState.Load(); now != st {
		s.setReadDeadline(now)
	}
	n, err := s.conn.Read(b)
	s.p.stats.bytesRead.Add(uint64(n))
	return n, err
}

// serve runs the session until the client leaves and every reply it is
// owed has been written or dropped.
func (s *session) serve() {
	go s.readLoop()
	if werr := s.writeLoop(); werr == nil && (s.lingerClose || s.readState.Load() == readDraining) {
		s.closeDrained()
		return
	}
	_ = s.conn.Close()
	if s.cut.Load() {
		s.logCutOff()
	}
}

// stopReading makes the reader return; used by quit and write errors.
func (s *session) stopReading() {
	if s.readState.Swap(readStopped) != readStopped {
		s.setReadDeadline(readStopped)
	}
}

func (s *session) readLoop() {
	defer func() {
		s.mu.Lock()
		s.readerDone = true
		s.mu.Unlock()
		s.wakeWriter()
	}()
	for {
		err := s.rr.Next(&s.req)
		s.now = time.Now()
		if err == nil {
			if !s.dispatch(&s.req) {
				return
			}
			continue
		}
		var fe *protocol.ForeignError
		if errors.As(err, &fe) {
			s.p.stats.protocolRejects[fe.Kind].Add(1)
			s.p.log.Debug("client speaks another protocol; closing", zap.Stringer("protocol", fe.Kind),
				zap.Stringer("client", s.conn.RemoteAddr()))
			if len(fe.Reply) > 0 {
				s.enqueueLocalBytes(fe.Reply)
				s.lingerClose = true
			}
			return // the writer sends what is owed, then the connection closes
		}
		var re *protocol.ReplyError
		if !errors.As(err, &re) {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
				s.p.log.Debug("client read", zap.Error(err))
			}
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
			return // the rest of the stream cannot be parsed
		}
	}
}

// enqueue appends r to the reply FIFO, waiting while the FIFO is full, the
// client is over its output limit, or r's keys would overfill the window of
// keys in flight. It stops waiting once the client is gone: what is
// enqueued then is dropped by the writer.
func (s *session) enqueue(r *request) {
	s.mu.Lock()
	waited := false
	for !s.gone.Load() && (s.pending >= maxPendingReplies || s.held.Load() >= s.softLimit ||
		s.keysInFlight > 0 && s.keysInFlight+r.nkeys > s.window) {
		s.waitSpace = true
		s.mu.Unlock()
		<-s.space
		waited = true
		s.mu.Lock()
	}
	if waited {
		// The backend timeout counts from when the command is sent, not
		// from when it was read and then held back for the client.
		s.now = timeNow()
	}
	s.pending++
	s.keysInFlight += r.nkeys
	if s.tail == nil {
		s.head = r
	} else {
		s.tail.next = r
	}
	s.tail = r
	s.mu.Unlock()
}

// enqueueLocal queues a reply line the proxy makes itself.
func (s *session) enqueueLocal(line string) {
	r := newRequest(s, protocol.OpNone)
	r.local = append(append(r.local, line...), "\r\n"...)
	s.enqueue(r)
	r.finish()
}

func (s *session) wakeWriter() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes replies in order. After the client goes away it keeps
// draining (and discarding) until every outstanding request has completed,
// which the backend timeout bounds, so no request is leaked. It returns the
// error that ended writing to the client (errQuit after quit), or nil when
// every reply was written.
func (s *session) writeLoop() error {
	bw := bufio.NewWriterSize(&clientWriter{s: s}, 16<<10)
	var werr error
	var written int64 // reply memory of the last reply written, to release
	for {
		s.mu.Lock()
		if written > 0 {
			// Released under mu, so a reader that saw the old total and
			// is about to wait is sure to be woken below.
			s.held.Add(-written)
			written = 0
			s.wakeReaderLocked()
		}
		r := s.head
		if r != nil && r.done {
			s.head = r.next
			if s.head == nil {
				s.tail = nil
			}
			s.pending--
			s.wakeReaderLocked()
			s.mu.Unlock()
			if l := s.p.latency; l != nil && r.op != protocol.OpNone && !r.more {
				l.observe(r.op, r.start)
			}
			if werr == nil && s.cut.Load() {
				werr = errOutputLimit
			}
			if werr == nil {
				s.render(bw, r)
				if r.op == protocol.OpQuit {
					// Everything before quit is still owed to the client.
					_ = bw.Flush()
					werr = errQuit
					s.stopReading()
				}
			}
			if werr != nil {
				s.gone.Store(true)
			}
			written = r.chargedBytes()
			r.release()
			continue
		}
		finished := r == nil && s.readerDone
		s.mu.Unlock()
		if werr == nil && bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				werr = err
				s.gone.Store(true)
				s.stopReading()
			}
		}
		if finished {
			return werr
		}
		<-s.wake
	}
}

// wakeReaderLocked lets a reader waiting in enqueue check again.
func (s *session) wakeReaderLocked() {
	if s.waitSpace {
		s.waitSpace = false
		select {
		case s.space <- struct{}{}:
		default:
		}
	}
}

var errQuit = errors.New("client quit")

// clientWriter counts bytes written to the client.
type clientWriter struct{ s *session }

func (cw *clientWriter) Write(b []byte) (int, error) {
	n, err := cw.s.conn.Write(b)
	cw.s.p.stats.bytesWritten.Add(uint64(n))
	return n, err
}
