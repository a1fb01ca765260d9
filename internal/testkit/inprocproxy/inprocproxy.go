// Package inprocproxy runs mcproxy in-process in front of real memcached, for
// the tests under test/ that drive it with client libraries.
package inprocproxy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

// Start runs mcproxy in-process in front of three real memcached and
// returns its address and the backends'. It sets opts' Ring, Backends and
// Logger, and AutoEject; the caller chooses the rest, such as FlushOnReadd.
// The proxy and the memcached stop when t ends.
func Start(t testing.TB, opts proxy.Options) (addr string, backends []string) {
	t.Helper()
	opts.Ring = ring.Config{Partitions: 7919, ReplicationFactor: 20, Load: 1.25}
	opts.AutoEject = true
	opts.Logger = zap.NewNop()
	for i := 0; i < 3; i++ {
		s := memcachedtest.Start(t)
		backends = append(backends, s.Addr)
		opts.Backends = append(opts.Backends, proxy.Backend{Addr: s.Addr, Weight: 1})
	}
	p, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return l.Addr().String(), backends
}
