package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeBackend is a misbehaving memcached written for a test: a TCP server on
// a loopback port that answers "version" like memcached (the proxy checks
// it after dialing, and so does the health prober) and hands every other
// command to the test's script. The accept goroutine owns the listener; each
// connection has a goroutine of its own; Cleanup closes them all and waits.
type fakeBackend struct {
	addr string
	// script returns the bytes to send for one command: its line split into
	// fields, and its data block for a storage command. n counts the
	// commands other than version that the fake has seen, from 1, across
	// all connections.
	script func(n int, f []string, data []byte) string

	accepted atomic.Int32 // connections accepted, probes included
	closed   atomic.Int32 // connections the peer closed
	commands atomic.Int32 // commands other than version

	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startFake(t testing.TB, script func(n int, f []string, data []byte) string) *fakeBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{addr: l.Addr().String(), script: script, l: l}
	fb.wg.Add(1)
	go fb.accept()
	t.Cleanup(func() {
		l.Close()
		fb.mu.Lock()
		for _, c := range fb.conns {
			c.Close()
		}
		fb.mu.Unlock()
		fb.wg.Wait()
	})
	return fb
}

func (fb *fakeBackend) accept() {
	defer fb.wg.Done()
	for {
		c, err := fb.l.Accept()
		if err != nil {
			return
		}
		fb.accepted.Add(1)
		fb.mu.Lock()
		fb.conns = append(fb.conns, c)
		fb.mu.Unlock()
		fb.wg.Add(1)
		go fb.serve(c)
	}
}

func (fb *fakeBackend) serve(c net.Conn) {
	defer fb.wg.Done()
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			fb.closed.Add(1)
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "version" {
			if _, err := c.Write([]byte("VERSION 1.6.18\r\n")); err != nil {
				return
			}
			continue
		}
		var data []byte
		switch f[0] {
		case "set", "add", "replace", "append", "prepend", "cas":
			n, _ := strconv.Atoi(f[4])
			data = make([]byte, n+2)
			if _, err := io.ReadFull(br, data); err != nil {
				return
			}
			data = data[:n]
		}
		reply := fb.script(int(fb.commands.Add(1)), f, data)
		if _, err := c.Write([]byte(reply)); err != nil {
			return
		}
	}
}

// fakeValue is the value the fake stores under every key.
func fakeValue(key string) string { return "v-" + key }

// honest answers like a memcached that holds fakeValue(k) for every key k.
func honest(f []string) string {
	switch f[0] {
	case "get", "gets", "gat", "gats":
		keys := f[1:]
		if f[0] == "gat" || f[0] == "gats" {
			keys = f[2:]
		}
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(valueBlock(f[0], k, fakeValue(k)))
		}
		b.WriteString("END\r\n")
		return b.String()
	case "set", "add", "replace", "append", "prepend", "cas":
		return "STORED\r\n"
	case "delete":
		return "DELETED\r\n"
	case "touch":
		return "TOUCHED\r\n"
	case "incr", "decr":
		return "1\r\n"
	case "flush_all":
		return "OK\r\n"
	}
	return "ERROR\r\n"
}

// valueBlock is one VALUE block as memcached writes it for op: with a cas
// unique for gets and gats only.
func valueBlock(op, key, val string) string {
	if op == "gets" || op == "gats" {
		return fmt.Sprintf("VALUE %s 0 %d 7\r\n%s\r\n", key, len(val), val)
	}
	return fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\n", key, len(val), val)
}

// fakeProxy starts a proxy in front of fake (and of real memcached servers
// when real > 0), with one connection per backend so that the order of
// replies on it is the order of the client's commands.
func fakeProxy(t *testing.T, fake *fakeBackend, real int, mod func(*Options)) *testProxy {
	t.Helper()
	return startProxy(t, real, func(o *Options) {
		o.Connections = 1
		o.Health.AlwaysUp = true
		o.Backends = append(o.Backends, Backend{Addr: fake.addr, Weight: 1})
		if mod != nil {
			mod(o)
		}
	})
}
