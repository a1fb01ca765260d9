package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"

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

// bridgeBuffer is each direction's copy buffer: one TLS record's worth.
const bridgeBuffer = 16 << 10

// tlsState is the proxy's TLS bookkeeping, shared by its goroutines.
type tlsState struct {
	bridges     sync.WaitGroup // the bridge goroutines running
	handshaking sync.WaitGroup // the TLS listener's handshake goroutines
	sessions    atomic.Int64   // bridged client sessions open: 2 descriptors each beyond the socket
	inFlight    atomic.Int64   // listener handshakes under way

	handshakes, handshakeFailures atomic.Uint64 // TLS listener
	backendHandshakes             atomic.Uint64 // TLS backend connections made
	backendResumed                atomic.Uint64 // of which resumed a session
	backendFailures               atomic.Uint64 // backend handshakes or certificates refused

	backend *backendTLS // nil: backends speak clear text
}

// wait waits for the handshakes and the bridges to end; they end once the
// loops have closed their ends and the dial context is cancelled.
func (t *tlsState) wait() {
	t.handshaking.Wait()
	t.bridges.Wait()
}

// fds is the descriptors the TLS side holds beyond one per client: a
// bridged client holds three (its TLS socket and the socketpair), a
// handshake one, not yet counted as a client. The descriptor budget counts
// them against the clients' share.
func (t *tlsState) fds() int {
	return int(2*t.sessions.Load() + t.inFlight.Load())
}

// backendConnFds is the descriptors one backend connection may hold: its
// socket and a moment's duplicate while it is dialed, and with TLS the two
// ends of its bridge besides.
func (t *tlsState) backendConnFds() int {
	if t.backend != nil {
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
// descriptor of the bridge is closed. lines ends every TLS record the
// peer gets at a line end where it can (toBackend).
func (p *Proxy) bridge(tc *tls.Conn, local *net.UnixConn, lines bool, done func()) {
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
		copyBuffered(tc, local, lines)
		_ = tc.Close()
		_ = local.CloseRead()
	}()
}

// copyBuffered copies from src to dst until either fails or src ends; it
// reports whether dst failed. Each Write to a tls.Conn is one record (the
// buffer holds one record's worth, dynamic record sizing is off). With
// lines, a write stops after the last line end of what was read, and the
// rest waits for more (or for src to pause): memcached 1.6 with TLS stalls
// when a command line is split between two records and the second is
// already buffered, as the TLS records of a pipelined batch would be; a
// record that ends inside a value's data block is harmless.
func copyBuffered(dst io.Writer, src io.Reader, lines bool) (dstFailed bool) {
	buf := make([]byte, bridgeBuffer)
	held := 0 // bytes at the head of buf kept from the last read
	for {
		n, err := src.Read(buf[held:])
		n += held
		cut := n
		if lines && err == nil && n > 0 {
			cut = lineCut(buf[:n])
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

// lineCut is where a write of b should stop: after its last "\n", or all
// of b when it holds none (inside a long value). The loop writes whole
// commands, so what follows the cut is the head of bytes on their way.
func lineCut(b []byte) int {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return i + 1
	}
	return len(b)
}
