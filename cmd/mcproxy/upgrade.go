package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/proxy"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// A zero-downtime upgrade (docs/operations.md): a new mcproxy started with
// the same config connects to the running one's upgrade_socket, takes its
// listening sockets, and then its client connections one by one at their
// command boundaries (proxy.HandOver, proxy.Adopt). The old one exits 0
// once it holds nothing; the new one listens on upgrade_socket in turn.

// upgradeHandshake bounds each side's wait for the other at the start of
// an upgrade: the old process's for the request, the new one's for the
// listeners. A new process whose old one does not answer in time (stopped,
// hung) listens on its own socket beside it (reuse_port).
const upgradeHandshake = 5 * time.Second

// listenTCP listens on addr, with SO_REUSEPORT if reusePort.
func listenTCP(addr string, reusePort bool) (net.Listener, error) {
	var lc net.ListenConfig
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); cerr != nil {
				return cerr
			}
			if err != nil {
				return fmt.Errorf("set SO_REUSEPORT: %w", err)
			}
			return nil
		}
	}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}

// oldProcess is the connection to the mcproxy a new one takes over from.
type oldProcess struct {
	conn *net.UnixConn
	done chan struct{} // closed when adopt has returned; nil until it runs
}

// connectOld connects to the running mcproxy's upgrade socket, if the
// config has one and a process listens on it; nil otherwise.
func connectOld(cfg config.Config, log *zap.Logger) *oldProcess {
	if cfg.UpgradeSocket == "" {
		return nil
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: cfg.UpgradeSocket, Net: "unixpacket"})
	if err != nil {
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ECONNREFUSED) {
			log.Warn("upgrade socket: no old process to take over from", zap.String("upgrade_socket", cfg.UpgradeSocket),
				zap.Error(err))
		}
		return nil
	}
	return &oldProcess{conn: conn}
}

// takeListeners asks the old process for its listening sockets, and
// returns what to serve on and whether the old process hands its clients
// over next (then call adopt). When it does not give them (it does not
// answer in time), or they are not what the config listens on, the new
// process listens on its own socket beside it.
func (o *oldProcess) takeListeners(cfg config.Config, log *zap.Logger) ([]net.Listener, bool, error) {
	lns, err := proxy.TakeListeners(o.conn, upgradeHandshake)
	if err != nil {
		log.Warn("the old process did not hand its listeners over; listening beside it", zap.Error(err))
		_ = o.conn.Close()
	}
	if err == nil && coversListen(lns, cfg.Listen) {
		log.Info("took the listeners over from the old process", zap.String("upgrade_socket", cfg.UpgradeSocket))
		return lns, true, nil
	}
	if err == nil {
		log.Warn("the old process listens elsewhere than listen; listening there too", zap.String("listen", cfg.Listen))
	}
	l, lerr := listenTCP(cfg.Listen, cfg.ReusePort)
	if lerr != nil {
		return lns, err == nil, lerr
	}
	return append(lns, l), err == nil, nil
}

// coversListen reports whether one of lns listens on addr.
func coversListen(lns []net.Listener, addr string) bool {
	want, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return false
	}
	for _, l := range lns {
		got, ok := l.Addr().(*net.TCPAddr)
		if ok && got.Port == want.Port && (want.IP == nil && got.IP.IsUnspecified() || got.IP.Equal(want.IP)) {
			return true
		}
	}
	return false
}

// adopt takes the old process's clients into p, in the background; the
// old process goes quiet at most its drain grace between two of them.
func (o *oldProcess) adopt(p *proxy.Proxy, grace time.Duration, log *zap.Logger) {
	o.done = make(chan struct{})
	go func() {
		defer close(o.done)
		defer o.conn.Close()
		if err := p.Adopt(o.conn, grace+upgradeHandshake); err != nil {
			log.Warn("taking clients over from the old process ended early", zap.Error(err))
		}
	}()
}

// close ends the connection to the old process and waits for adopt, if
// it runs, which the close ends at once; nil-safe.
func (o *oldProcess) close() {
	if o == nil {
		return
	}
	_ = o.conn.Close()
	if o.done != nil {
		<-o.done
	}
}

// upgradeSocket is the Unix socket on which a running mcproxy waits for the
// new process of an upgrade.
type upgradeSocket struct {
	ln       *net.UnixListener
	path     string
	created  os.FileInfo        // the socket file as created, to remove only our own
	requests chan *net.UnixConn // the one accepted request
	done     chan struct{}      // closed when the accepting goroutine returns
}

// listenUpgrades listens on cfg.UpgradeSocket, if set, replacing the socket
// file of a process that has gone (or the one this process took over from,
// which keeps listening on its own socket, unlinked, until it exits).
func listenUpgrades(cfg config.Config, log *zap.Logger) (*upgradeSocket, error) {
	u := &upgradeSocket{path: cfg.UpgradeSocket, requests: make(chan *net.UnixConn, 1), done: make(chan struct{})}
	if u.path == "" {
		close(u.done)
		return u, nil
	}
	if fi, err := os.Lstat(u.path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("upgrade_socket %s exists and is not a socket", u.path)
		}
		_ = os.Remove(u.path)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: u.path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("upgrade_socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // the path may be the next process's by then
	if err := os.Chmod(u.path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("upgrade_socket: %w", err)
	}
	u.ln = ln
	u.created, _ = os.Lstat(u.path)
	go u.accept(log)
	return u, nil
}

// accept waits for the one upgrade request this process answers: from a
// process of the same user that says it wants the clients.
func (u *upgradeSocket) accept(log *zap.Logger) {
	defer close(u.done)
	for {
		conn, err := u.ln.AcceptUnix()
		if err != nil {
			return // closed
		}
		err = checkPeer(conn)
		if err == nil {
			err = proxy.AwaitHandOver(conn, upgradeHandshake)
		}
		if err != nil {
			log.Warn("upgrade socket: refused a connection", zap.Error(err))
			_ = conn.Close()
			continue
		}
		u.requests <- conn
		return
	}
}

// checkPeer refuses a process of another user.
func checkPeer(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("peer credentials: %w", credErr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("process %d of uid %d is not of this process's user", cred.Pid, cred.Uid)
	}
	return nil
}

// close stops listening and removes the socket file if it is still this
// process's; a request accepted and not taken is closed.
func (u *upgradeSocket) close() {
	if u.ln == nil {
		return
	}
	_ = u.ln.Close()
	<-u.done
	select {
	case conn := <-u.requests:
		_ = conn.Close()
	default:
	}
	if fi, err := os.Lstat(u.path); err == nil && u.created != nil && os.SameFile(fi, u.created) {
		_ = os.Remove(u.path)
	}
}

// handOver gives p's listeners and clients to the new process on conn;
// the clients it could not give within grace are left for the drain.
func handOver(p *proxy.Proxy, conn *net.UnixConn, grace time.Duration, log *zap.Logger) {
	defer conn.Close()
	log.Info("a new mcproxy asks for the clients: handing them over", zap.Duration("grace", grace))
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := p.HandOver(ctx, conn); err != nil {
		log.Warn("handover incomplete: draining the clients left", zap.Error(err))
	}
}

// serveAll serves on the clear-text listeners lns and the TLS one of t
// until all return; the channel gets nil then, or the first error at once.
func serveAll(p *proxy.Proxy, lns []net.Listener, t *tlsSetup) <-chan error {
	out := make(chan error, 1)
	errs := make(chan error, len(lns)+1)
	n := len(lns)
	for _, l := range lns {
		go func() { errs <- p.Serve(l) }()
	}
	if t != nil && t.listener != nil {
		n++
		go func() { errs <- p.ServeTLS(t.listener, t.opts) }()
	}
	go func() {
		for range n {
			if err := <-errs; err != nil {
				out <- err
				return
			}
		}
		out <- nil
	}()
	return out
}
