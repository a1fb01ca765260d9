package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
)

// lru_crawler metadump through the proxy: the dumps of every live backend,
// one after the other, streamed to the client and ended by one END. See
// docs/metadump.md for the design and the rules memcached sets.

const (
	// dumpChunkSize is the most dump bytes handed to the client's loop at
	// once. A chunk always has room for a line (protocol.MaxDumpLine).
	dumpChunkSize = 64 << 10
	// dumpChunks is how many chunks a dump has: the reader fills one while
	// the loop holds the other, and waits when the loop holds both.
	dumpChunks = 2
	// dumpIdleFactor times backend.timeout is how long a backend may stay
	// silent during a dump before the dump fails. A crawler walking many
	// expired items writes nothing for a while, so it is longer than a
	// request's timeout.
	dumpIdleFactor = 4
	// dumpSocketBuffer caps the kernel's receive buffer of a dump's
	// backend connection, which would otherwise grow to tens of megabytes
	// while the client is behind: then the backend's crawler waits, not
	// the proxy's memory.
	dumpSocketBuffer = 256 << 10
	// dumpBusyRetry is how long the dump waits before asking a backend
	// whose crawler was busy again; it asks for at most an idle period.
	dumpBusyRetry = 50 * time.Millisecond
)

// metadump is one lru_crawler metadump on its way from the backends to its
// client.
//
// A dump is rare and long: it lists every item of every backend, far more
// than a reply the shared backend connections read whole. So it has a
// goroutine of its own (run), off the loop, that dials each live backend in
// turn on a connection of its own, sends the metadump, checks the shape of
// every line (protocol.ClassifyDumpLine) and hands the lines to the client's
// loop in chunks (arrive). The session renders them into its output through
// the loop's own write path (streamDump), in its reply order: the dump's
// request sits in the session's FIFO like any other. Like memcached, which
// hands the connection to its crawler, the session reads no more of the
// client's commands until the dump is complete (session.hasRoom), so
// commands sent behind a metadump run after it. The chunks go round
// between the two: the reader
// fills a chunk only once the loop has given one back, which it does after
// copying it into the client's output, and the session copies only while
// its unwritten output is under outputHighWater. So a client that reads
// slowly stops the reader, which stops reading its backend (as memcached's
// crawler waits for a slow client), and the proxy holds at most dumpChunks
// chunks of a dump besides the client's output buffer.
//
// Ownership: the fields marked "loop" belong to the session's event loop;
// the ones marked "reader" to run's goroutine. They share only free (chunks
// given back), the chunks passed through post, and ctx, which the loop
// cancels when the client goes away and which ends with the proxy.
type metadump struct {
	p      *Proxy
	l      *eventLoop
	ctx    context.Context
	cancel context.CancelFunc
	free   chan []byte // empty chunks for the reader to fill

	// reader
	backends []*backend // the live backends when the dump was asked for
	cmd      []byte     // the line sent to each of them
	items    int        // item lines passed on so far
	bytes    int        // and their bytes
	br       *bufio.Reader

	// loop
	sess   *session
	ready  [][]byte // chunks arrived and not rendered yet, oldest first
	last   bool     // the last chunk has arrived
	failed bool     // it ends with the proxy's SERVER_ERROR: close the client after it
	over   bool     // the dump's reply is complete or its client gone: drop what arrives
}

// errMetadumpProtocol ends a dump whose backend wrote a line that is not
// one of a metadump.
var errMetadumpProtocol = fmt.Errorf("%w in metadump", protocol.ErrBadReply)

// dispatchLruCrawler answers lru_crawler. Only metadump goes through the
// proxy; the other subcommands change one server's crawler, which a client
// of the proxy cannot address, and get a clear refusal.
func (s *session) dispatchLruCrawler(req *protocol.Request) {
	c := &req.Crawler
	if c.Sub != protocol.CrawlerMetadump {
		s.p.stats.countResult(protocol.OpLruCrawler, resError, 1)
		s.enqueueLocal("CLIENT_ERROR lru_crawler " + c.Sub.String() + " is not supported by mcproxy; only metadump is")
		return
	}
	live, refusal := s.metadumpBackends()
	if refusal != "" {
		s.p.stats.countResult(protocol.OpLruCrawler, resError, 1)
		s.enqueueLocal(refusal)
		return
	}
	r := newRequest(s, protocol.OpNone) // rendered by streamDump, not by render
	r.dump = s.newMetadump(live, c)
	s.enqueue(r)
	s.p.dials.Add(1)
	go r.dump.run()
}

// metadumpBackends returns the backends a metadump asked for now lists,
// or the line that refuses it. A nil refusal takes the one-dump guard.
func (s *session) metadumpBackends() (live []*backend, refusal string) {
	if s.metadumpPipelined() {
		return nil, protocol.ErrMetadumpPipelined.Line
	}
	if live = s.liveBackends(); len(live) == 0 {
		return nil, "SERVER_ERROR " + errNoBackends.Error()
	}
	// A memcached runs one crawler: a second metadump while one runs gets
	// BUSY. The proxy keeps to one dump at a time as well, so that it never
	// sends a backend a metadump while its own holds the crawler (memcached
	// then blocks the worker thread that reads the second until the first
	// is done, and with it every connection on that thread).
	if !s.p.dumping.CompareAndSwap(false, true) {
		return nil, protocol.ErrCrawlerBusy.Line
	}
	return live, ""
}

// metadumpPipelined reports whether a metadump comes while a reply the
// client is owed is still unsent, which memcached refuses. memcached starts
// a dump only when its response stack is empty, and it writes its replies
// out before it reads on after a get, gets, gat, gats or mn (and after the
// last command of a read), so the metadump is refused exactly when it
// follows, in the same read, a command other than those whose reply is
// still unsent. The proxy's equivalent: the newest reply in the client's
// FIFO, if any, is not one of those. (A reply already rendered and only
// waiting for the socket is memcached's flushed write.) A command with no
// reply at all, such as "verbosity 1 noreply", leaves nothing in the FIFO
// here, where memcached counts its empty response; that one case it refuses
// and the proxy takes.
func (s *session) metadumpPipelined() bool {
	r := s.tail
	if r == nil {
		return false
	}
	return !r.op.IsRetrieval() && r.op != protocol.OpMetaNoop
}

// liveBackends returns the backends a command can reach now, in ring
// order: the ring's members less those known down (kept in the ring by
// the ejection cap, or with auto_eject off), whose commands fail fast.
func (s *session) liveBackends() []*backend {
	t := s.p.table.Load()
	var live []*backend
	for _, b := range t.ringMembers() {
		if b.capped.Load() || !s.p.opts.AutoEject && !s.p.health.IsUp(b.name) {
			continue
		}
		live = append(live, b)
	}
	return live
}

// newMetadump prepares the dump c asks for of the backends live.
func (s *session) newMetadump(live []*backend, c *protocol.CrawlerRequest) *metadump {
	ctx, cancel := context.WithCancel(s.p.dialCtx)
	d := &metadump{
		p: s.p, l: s.l, ctx: ctx, cancel: cancel,
		free:     make(chan []byte, dumpChunks),
		backends: live,
		cmd:      protocol.AppendMetadump(nil, c),
		sess:     s,
	}
	for range dumpChunks {
		d.free <- make([]byte, 0, dumpChunkSize)
	}
	return d
}

// run is the dump's reader goroutine.
func (d *metadump) run() {
	defer d.p.dials.Done()
	defer d.cancel()
	start := time.Now()
	chunk, ok := d.takeChunk()
	for i := 0; ok && i < len(d.backends); i++ {
		b := d.backends[i]
		var refusal string
		var err error
		chunk, refusal, err = d.dumpBackend(b, chunk)
		if ok = err != errDumpStopped; !ok || refusal == "" && err == nil {
			continue
		}
		// A refusal that is the whole reply (nothing listed yet) is
		// memcached's own answer, passed on as it came. Any other failure
		// ends the dump with the proxy's error, after which the client is
		// closed: a tool that reads a dump until END (memcached-tool)
		// would otherwise wait for ever, and a short list must not pass
		// for a whole one.
		end, failed := refusal, d.items > 0 || err != nil
		if failed {
			reason := refusal
			if err != nil {
				reason = reasonOf(err).Error()
			}
			d.p.log.Warn("metadump cut short", zap.String("backend", b.name), zap.String("reason", reason),
				zap.NamedError("error", err), zap.Int("items_sent", d.items))
			end = "SERVER_ERROR metadump of " + b.name + " failed: " + reason
		}
		d.end(chunk, end, failed)
		return
	}
	if ok && d.end(chunk, "END", false) {
		d.p.log.Info("metadump sent", zap.Int("backends", len(d.backends)), zap.Int("items", d.items),
			zap.Int("bytes", d.bytes), zap.Duration("took", time.Since(start)))
	}
}

// dumpBackend streams b's dump into chunks, handing them to the loop. It
// returns the chunk being filled and either b's refusal (a reply line
// without CRLF: ErrCrawlerBusy's when b stayed busy), or the error b
// failed with (errDumpStopped when the dump was stopped), or neither when
// b's dump is complete.
func (d *metadump) dumpBackend(b *backend, chunk []byte) (_ []byte, refusal string, _ error) {
	idle := dumpIdleFactor * d.p.opts.Timeout
	busyUntil := time.Now().Add(idle)
	for {
		conn, err := d.p.connect(d.ctx, b.addr, d.p.opts.ConnectTimeout)
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(dumpSocketBuffer)
			}
			stop := context.AfterFunc(d.ctx, func() { conn.Close() })
			chunk, refusal, err = d.stream(conn, chunk, idle)
			stop()
			conn.Close()
		}
		switch {
		case d.ctx.Err() != nil || err == errDumpStopped:
			return chunk, "", errDumpStopped
		case err != nil:
			b.countFailed(reasonOf(err), 1)
			return chunk, "", err
		case refusal != protocol.ErrCrawlerBusy.Line || time.Now().After(busyUntil):
			return chunk, refusal, nil
		}
		// Busy: most often memcached's own crawler reclaiming expired
		// items for a moment. Ask again shortly.
		t := time.NewTimer(dumpBusyRetry)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
			return chunk, "", errDumpStopped
		}
	}
}

// errDumpStopped: the loop stopped or the client went away mid-dump.
var errDumpStopped = errors.New("metadump stopped")

// stream sends the metadump on conn and moves the item lines it answers
// into chunks, handing each full chunk to the loop, and what it has before
// it waits for the backend. It returns the chunk being filled and, when
// the backend refused the dump, its refusal line without CRLF; err is a
// failure of the backend (idle of silence, a broken connection, a line
// that is not one of a dump) or errDumpStopped.
func (d *metadump) stream(conn net.Conn, chunk []byte, idle time.Duration) (_ []byte, refusal string, err error) {
	_ = conn.SetWriteDeadline(time.Now().Add(d.p.opts.Timeout))
	if _, err := conn.Write(d.cmd); err != nil {
		return chunk, "", err
	}
	if d.br == nil {
		d.br = bufio.NewReaderSize(conn, dumpChunkSize)
	} else {
		d.br.Reset(conn)
	}
	ok := true
	for first := true; ; first = false {
		if d.br.Buffered() == 0 {
			if len(chunk) > 0 { // let the client have what came before waiting for more
				if chunk, ok = d.handOver(chunk, false, false); !ok {
					return chunk, "", errDumpStopped
				}
			}
			_ = conn.SetReadDeadline(time.Now().Add(idle))
		}
		line, err := d.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = fmt.Errorf("%w: a line longer than %d bytes", errMetadumpProtocol, dumpChunkSize)
			}
			return chunk, "", err
		}
		switch protocol.ClassifyDumpLine(line) {
		case protocol.DumpItem:
			chunk = append(chunk, line...)
			d.items++
			d.bytes += len(line)
			if len(chunk)+protocol.MaxDumpLine > cap(chunk) {
				if chunk, ok = d.handOver(chunk, false, false); !ok {
					return chunk, "", errDumpStopped
				}
			}
		case protocol.DumpEnd:
			return chunk, "", nil
		case protocol.DumpBusy, protocol.DumpRefused:
			if first {
				return chunk, string(bytes.TrimSuffix(line, []byte("\r\n"))), nil
			}
			fallthrough
		default:
			return chunk, "", fmt.Errorf("%w: %q", errMetadumpProtocol, clip64(line))
		}
	}
}

// end hands the last chunk to the loop with line, the dump's last line,
// after it; failed says line is the proxy's error. It returns false when
// the dump was stopped.
func (d *metadump) end(chunk []byte, line string, failed bool) bool {
	ok := true
	if len(chunk)+len(line)+2 > cap(chunk) {
		if chunk, ok = d.handOver(chunk, false, false); !ok {
			return false
		}
	}
	chunk = append(append(chunk, line...), "\r\n"...)
	_, ok = d.handOver(chunk, true, failed)
	return ok
}

// handOver passes chunk to the loop and, unless it is the last, waits for
// an empty one to go on with. It returns false when the dump was stopped.
func (d *metadump) handOver(chunk []byte, last, failed bool) ([]byte, bool) {
	if !d.l.post(func() { d.arrive(chunk, last, failed) }) {
		return nil, false
	}
	if last {
		return nil, true
	}
	return d.takeChunk()
}

// takeChunk waits for an empty chunk from the loop.
func (d *metadump) takeChunk() ([]byte, bool) {
	select {
	case c := <-d.free:
		return c[:0], true
	case <-d.ctx.Done():
		return nil, false
	}
}

// arrive takes a chunk from the reader, on the loop.
func (d *metadump) arrive(chunk []byte, last, failed bool) {
	if d.over {
		return
	}
	s := d.sess
	if !s.charge(len(chunk)) {
		return // over the hard limit: the client is cut off, the dump dropped
	}
	d.ready = append(d.ready, chunk)
	d.last, d.failed = last, failed
	s.l.markSession(s)
}

// dumpReady reports whether r is a dump with bytes to render.
func (r *request) dumpReady() bool { return r.dump != nil && len(r.dump.ready) > 0 }

// streamDump renders the dump r, the head of the session's FIFO, as far as
// it has arrived and the output has room, giving each chunk back to the
// reader. It returns true when the dump's reply is complete (r is done);
// the loop's renderReady then takes it off the FIFO like any reply.
func (s *session) streamDump(r *request) bool {
	d := r.dump
	if s.state >= sessLost {
		d.finish(false)
		r.done = true
		return true
	}
	for len(d.ready) > 0 && len(s.out)-s.outOff < outputHighWater {
		c := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		s.out = append(s.out, c...) // charged since it arrived, until written
		select {
		case d.free <- c[:0]:
		default: // never: there are only dumpChunks chunks
		}
	}
	if len(d.ready) > 0 || !d.last {
		return false
	}
	d.finish(!d.failed)
	r.done = true
	if d.failed {
		s.lingerClose = true
		s.stopReading() // the client is closed once the error line is out
	}
	return true
}

// finish ends the dump on the loop: the reader stops, and what was not
// rendered is dropped and its charge released.
func (d *metadump) finish(ok bool) {
	if d.over {
		return
	}
	d.over = true
	d.cancel()
	// Here, not when the reader returns: the client may ask for its next
	// dump as soon as this one is rendered, before the reader has returned.
	d.p.dumping.Store(false)
	for i, c := range d.ready {
		d.sess.held.Add(-int64(len(c)))
		d.ready[i] = nil
	}
	d.ready = nil
	res := resOK
	if !ok {
		res = resError
	}
	d.p.stats.countResult(protocol.OpLruCrawler, res, 1)
}
