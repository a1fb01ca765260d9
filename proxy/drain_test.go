package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// pipelinedSets returns n sets of distinct keys as one buffer.
func pipelinedSets(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "set drain:%d 0 0 10\r\n0123456789\r\n", i)
	}
	return b.Bytes()
}

// TestShutdownAnswersWhatWasSent: commands a client has sent when shutdown
// begins are all answered, and the stream then ends in EOF, not a reset.
func TestShutdownAnswersWhatWasSent(t *testing.T) {
	const n = 2000
	tp := startProxy(t, 2, nil)
	c := memcachedtest.Dial(t, tp.addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Something answered first, so the session surely exists at Shutdown.
	memcachedtest.RoundTrip(t, c, "version\r\n", "\r\n", 1)

	read := make(chan error, 1)
	var got []byte
	go func() {
		var err error
		got, err = io.ReadAll(c)
		read <- err
	}()
	if _, err := c.Write(pipelinedSets(n)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-read; err != nil {
		t.Fatalf("after %d STORED: %v", bytes.Count(got, []byte("STORED\r\n")), err)
	}
	if want := bytes.Repeat([]byte("STORED\r\n"), n); !bytes.Equal(got, want) {
		t.Fatalf("%d of %d STORED, then EOF (%d bytes)", bytes.Count(got, []byte("STORED\r\n")), n, len(got))
	}
}

// TestShutdownClosesQuietClientsGently: an idle client of a stopping proxy
// reads EOF, not a reset, and the listener is closed.
func TestShutdownClosesQuietClientsGently(t *testing.T) {
	tp := startProxy(t, 1, nil)
	idle := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, idle, "version\r\n", "\r\n", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	t.Logf("shutdown with one idle client took %v", time.Since(start))
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(idle); err != nil || len(b) != 0 {
		t.Fatalf("idle client read %q, %v; want EOF", b, err)
	}
	if _, err := net.DialTimeout("tcp", tp.addr, time.Second); err == nil {
		t.Fatal("a stopped proxy still accepts")
	}
}

// TestShutdownGraceCutsDrainShort: a client that never stops sending is cut
// off when ctx ends, and Shutdown says so.
func TestShutdownGraceCutsDrainShort(t *testing.T) {
	tp := startProxy(t, 1, nil)
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "version\r\n", "\r\n", 1)
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() { // a client that keeps sending and never reads
		defer close(sent)
		_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for i := 0; i < 1e6; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write([]byte("get k\r\n")); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-sent }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v, want the deadline", err)
	}
}

// TestShutdownGraceBoundsStuckDrain: when the grace ends while a reply is
// still waiting on a frozen backend, Shutdown returns then, not after the
// backend timeout.
func TestShutdownGraceBoundsStuckDrain(t *testing.T) {
	const backendTimeout = time.Minute
	tp := startProxy(t, 1, func(o *Options) { o.Timeout = backendTimeout; o.Health.AlwaysUp = true })
	c := memcachedtest.Dial(t, tp.addr)
	// A get, not a version: the backend connection must be up before the
	// freeze, or its dial check times out and the stuck get fails fast.
	memcachedtest.RoundTrip(t, c, "get warm\r\n", "END\r\n", 1)
	if err := tp.backends[0].Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tp.backends[0].Thaw() }()
	if _, err := c.Write([]byte("get stuck\r\n")); err != nil {
		t.Fatal(err)
	}
	// Shutdown stops reading commands: wait until the get is at the
	// backend, or on a busy machine it may not have been read yet and the
	// client drains at once.
	waitInFlight(t, tp, tp.backends[0].Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := tp.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v, want the deadline", err)
	}
	if took := time.Since(start); took > backendTimeout/2 {
		t.Fatalf("shutdown took %v: it waited for the backend timeout", took)
	}
}
