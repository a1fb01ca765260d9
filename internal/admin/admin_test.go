package admin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	cnt := prometheus.NewCounter(prometheus.CounterOpts{Name: "mcproxy_test_total", Help: "test"})
	reg.MustRegister(cnt)
	cnt.Add(3)
	var ready atomic.Bool
	for _, pp := range []bool{false, true} {
		s, err := Start("127.0.0.1:0", Handler(reg, func() (bool, string) {
			if ready.Load() {
				return true, "ok"
			}
			return false, "no live backend"
		}, pp))
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + s.Addr().String()
		if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "mcproxy_test_total 3") {
			t.Errorf("/metrics: %d %q", code, body)
		}
		if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("/healthz: %d %q", code, body)
		}
		ready.Store(false)
		if code, body := get(t, base+"/readyz"); code != 503 || body != "no live backend\n" {
			t.Errorf("/readyz not ready: %d %q", code, body)
		}
		ready.Store(true)
		if code, _ := get(t, base+"/readyz"); code != 200 {
			t.Errorf("/readyz ready: %d", code)
		}
		code, _ := get(t, base+"/debug/pprof/")
		if pp && code != 200 || !pp && code != 404 {
			t.Errorf("pprof %v: /debug/pprof/ answered %d", pp, code)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
	}
}

func TestStartBadAddress(t *testing.T) {
	if _, err := Start("127.0.0.1:99999", http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "admin listen") {
		t.Fatalf("got %v", err)
	}
}

// TestConnectionCap holds MaxConnections keep-alive connections open, then
// sends requests on three more: the kernel holds those three in the listen
// backlog, unaccepted, until the held ones close, and then they and a new
// /metrics request are answered.
func TestConnectionCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := Start("127.0.0.1:0", Handler(reg, func() (bool, string) { return true, "ok" }, false))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	addr := s.Addr().String()
	const req = "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n"
	dialSend := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, memcachedtest.WaitBound)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	readOK := func(c net.Conn) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(memcachedtest.WaitBound))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("read reply: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	held := make([]net.Conn, MaxConnections)
	for i := range held {
		held[i] = dialSend()
		readOK(held[i]) // served, and now idle with keep-alive
	}
	const extra = 3
	waiting := make([]net.Conn, extra)
	for i := range waiting {
		waiting[i] = dialSend()
	}
	memcachedtest.WaitFor(t, fmt.Sprintf("%d connections in the admin listener's backlog", extra), func() bool {
		return acceptQueue(t, s.Addr().(*net.TCPAddr).Port) == extra
	})
	for _, c := range held {
		c.Close()
	}
	for _, c := range waiting {
		readOK(c)
	}
	if code, body := get(t, "http://"+addr+"/metrics"); code != 200 {
		t.Fatalf("/metrics after the held connections closed: %d %q", code, body)
	}
}

// acceptQueue returns how many connections wait to be accepted on the
// loopback listener of port, as the kernel reports it in /proc/net/tcp
// (a listening socket's rx_queue).
func acceptQueue(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != local || f[3] != "0A" { // 0A: LISTEN
			continue
		}
		queues := strings.SplitN(f[4], ":", 2) // tx_queue:rx_queue, hex
		n, err := strconv.ParseInt(queues[1], 16, 64)
		if err != nil {
			t.Fatalf("/proc/net/tcp: %q: %v", line, err)
		}
		return int(n)
	}
	t.Fatalf("no listener on 127.0.0.1:%d in /proc/net/tcp", port)
	return 0
}
