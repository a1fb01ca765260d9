package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The bridge: how a TLS connection lives on an event loop.
//
// crypto/tls cannot be driven by a non-blocking loop: its Read and Write
// block. So each TLS connection (a client of the TLS listener, or a
// connection to a TLS backend) gets a socketpair: the event loop owns one
// end as an ordinary socket, exactly as it owns a clear-text client or
// backend connection, and two goroutines copy between the other end and
// the tls.Conn, decrypting one way and encrypting the other. The session,
// the backend connection, the parsers, the FIFOs, the output limit and
// drain see a socket and nothing else; clear-text connections run no code
// of this file. docs/design.md has the measurements that chose it.
//
// Ends: when the TLS peer stops sending (EOF, an error), the loop's end
// is half-closed, so the loop sees the EOF it would see from a clear-text
// peer and finishes as it does then. When the loop closes its end, or the
// TLS peer can no longer be written to, the tls.Conn is closed (with a
// close_notify) and so is the bridge's end; the other goroutine then
// stops on its error.
//
// A peer that takes no bytes at all for bridgeSendTimeout is closed: while
// the copy to it is blocked, nothing reads the loop's end, so nothing
// would notice the loop closing it (a client cut off at its output limit
// that never reads, nor sends, nor leaves), and the bridge would hold its
// goroutines and descriptors for as long as the peer's TCP connection
// lives. A clear-text client in that state is closed by its loop at once.

// bridgeBuffer is each direction's copy buffer: one TLS record's worth.
const bridgeBuffer = 16 << 10

// bridgeSendTimeout bounds one write to a TLS peer, as nginx's
// send_timeout (same default) bounds a write to a client: a peer that
// reads nothing for this long is gone or hostile.
const bridgeSendTimeout = time.Minute

// tlsState is the proxy's TLS bookkeeping, shared by its goroutines.
type tlsState struct {
	bridges     sync.WaitGroup // the bridge goroutines running
	handshaking sync.WaitGroup // the TLS listener's handshake goroutines
	sessions    atomic.Int64   // bridged client sessions open: 2 descriptors each beyond the socket
	inFlight    atomic.Int64   // listener handshakes under way
	refusing    atomic.Int64   // handshakes under way to refuse the client (tls_listen.go refuse)

	handshakes, handshakeFailures atomic.Uint64 // TLS listener
	backendHandshakes             atomic.Uint64 // TLS backend connections made
	backendResumed                atomic.Uint64 // of which resumed a session
	backendFailures               atomic.Uint64 // backend handshakes or certificates refused

	backend *backendTLS // backend.tls, the default of every pool; nil: clear text
	// pools is each pool's own TLS (Options.PoolTLS), by pool name; a nil
	// value speaks clear text. Fixed at New.
	pools map[string]*backendTLS
	// byAddr is the TLS of each backend address of the pools in force,
	// replaced before the backends of new pools dial (setBackendTLS);
	// an address not in it takes backend.
	byAddr atomic.Pointer[map[string]*backendTLS]
	// anyBackend: some backend may speak TLS (backend or one of pools).
	anyBackend bool
}

// wait waits for the handshakes and the bridges to end; they end once the
// loops have closed their ends and the dial context is cancelled.
func (t *tlsState) wait() {
	t.handshaking.Wait()
	t.bridges.Wait()
}

// fds is the descriptors the TLS side holds beyond one per client: a
// bridged client holds three (its TLS socket and the socketpair), a
// handshake one, not yet counted as a client, and so does a refusal. The
// descriptor budget counts them against the clients' share.
func (t *tlsState) fds() int {
	return int(2*t.sessions.Load() + t.inFlight.Load() + t.refusing.Load())
}

// backendConnFds is the descriptors one backend connection may hold: its
// socket and a moment's duplicate while it is dialed, and with TLS the two
// ends of its bridge besides.
func (t *tlsState) backendConnFds() int {
	if t.anyBackend {
		return 4
	}
	return 2
}

// socketPair makes the socketpair of a bridge: the loop's end, a
// non-blocking descriptor, and the bridge's end as a net.Conn on the
// runtime poller.
func socketPair() (loopFd int, bridge *net.UnixConn, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("socketpair: %w", err)
	}
	f := os.NewFile(uintptr(fds[1]), "tls bridge")
	c, err := net.FileConn(f) // a duplicate on the poller
	f.Close()
	if err != nil {
		unix.Close(fds[0])
		return -1, nil, fmt.Errorf("socketpair: %w", err)
	}
	return fds[0], c.(*net.UnixConn), nil
}

// bridge starts copying between tc and local until either side ends; done,
// when not nil, runs once both goroutines have stopped and every
// descriptor of the bridge is closed. toBackend ends the records sent to
// the peer at command ends (copyBuffered).
func (p *Proxy) bridge(tc *tls.Conn, local *net.UnixConn, toBackend bool, done func()) {
	var left atomic.Int32
	left.Store(2)
	end := func() {
		if left.Add(-1) == 0 {
			_ = local.Close()
			if done != nil {
				done()
			}
		}
		p.tls.bridges.Done()
	}
	p.tls.bridges.Add(2)
	go func() { // peer -> loop
		defer end()
		if copyBuffered(local, tc, false) {
			_ = tc.Close() // the loop's end is gone: stop a write to the peer too
		}
		_ = local.CloseWrite()
	}()
	go func() { // loop -> peer
		defer end()
		copyBuffered(deadlineWriter{tc, bridgeSendTimeout}, local, toBackend)
		_ = tc.Close()
		_ = local.CloseRead()
	}()
}

// deadlineWriter writes to a TLS peer, each write bounded by limit.
type deadlineWriter struct {
	c     *tls.Conn
	limit time.Duration
}

func (w deadlineWriter) Write(b []byte) (int, error) {
	_ = w.c.SetWriteDeadline(time.Now().Add(w.limit))
	return w.c.Write(b)
}

// copyBuffered copies from src to dst until either fails or src ends; it
// reports whether dst failed. Each write to a TLS peer is one record.
//
// With commands (toward a backend), a write stops after the last whole
// command of what was read, and the rest waits for the bytes that follow
// it: memcached 1.6 with TLS stalls when a command (its line, or its line
// and data block) is split between two records and the second is already
// in (see BackendTLS's DynamicRecordSizingDisabled). The loop writes whole
// commands, so a read that ends inside one (the bridge woke while the loop
// was still writing, or a batch past one record) is followed by the rest.
// A command longer than the buffer (a value near 16 KB or more) is
// written as it comes.
func copyBuffered(dst io.Writer, src io.Reader, commands bool) (dstFailed bool) {
	buf := make([]byte, bridgeBuffer)
	var sc cmdScanner
	held := 0 // bytes at the head of buf, read but not yet written
	for {
		n, err := src.Read(buf[held:])
		n += held
		cut := n
		if commands && err == nil {
			cut = sc.cut(buf[:n], n == len(buf))
		}
		if cut > 0 {
			if _, werr := dst.Write(buf[:cut]); werr != nil {
				return true
			}
		}
		held = copy(buf, buf[cut:n])
		if err != nil {
			return false
		}
	}
}

// cmdScanner finds where whole text-protocol commands end in the stream
// the loop writes to a backend. It is owned by one bridge goroutine.
type cmdScanner struct {
	data int // bytes of a data block (its CRLF included) still to come, when a write ended inside one
}

// cut returns how much of b (which starts where the last cut ended) is
// whole commands. With none and full, it returns all of b and remembers
// where in a data block b ended.
func (s *cmdScanner) cut(b []byte, full bool) int {
	pos, data, last := 0, s.data, 0
	for pos < len(b) {
		if data > 0 {
			k := min(data, len(b)-pos)
			pos, data = pos+k, data-k
			if data == 0 {
				last = pos
			}
			continue
		}
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			break
		}
		data = dataBlock(b[pos : pos+i])
		if pos += i + 1; data == 0 {
			last = pos
		}
	}
	if last > 0 {
		s.data = 0
		return last
	}
	if full {
		s.data = data
		return len(b)
	}
	return 0
}

// dataBlock is the length of the data block (its CRLF included) that
// follows a command line: storage commands and ms carry one.
func dataBlock(line []byte) int {
	f := bytes.Fields(bytes.TrimSuffix(line, []byte("\r")))
	at := -1
	if len(f) > 0 {
		switch string(f[0]) {
		case "set", "add", "replace", "append", "prepend", "cas":
			at = 4
		case "ms":
			at = 2
		}
	}
	if at < 0 || at >= len(f) {
		return 0
	}
	n, err := strconv.Atoi(string(f[at]))
	if err != nil || n < 0 {
		return 0
	}
	return n + 2
}
