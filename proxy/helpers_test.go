package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/ring"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testProxy is a proxy serving on a free loopback port in front of real
// memcached servers.
type testProxy struct {
	*Proxy
	addr     string
	backends []*memcachedtest.Server
}

// startProxy starts n memcached servers and a proxy in front of them. mod
// may adjust the options before the proxy is built.
func startProxy(t testing.TB, n int, mod func(*Options)) *testProxy {
	t.Helper()
	servers := make([]*memcachedtest.Server, n)
	for i := range servers {
		servers[i] = memcachedtest.Start(t)
	}
	return startProxyFor(t, servers, mod)
}

// reconfigure gives tp the backends bs and the ring rc, its other settings
// unchanged.
func (tp *testProxy) reconfigure(bs []Backend, rc ring.Config) (ReconfigureResult, error) {
	s := tp.Settings()
	s.Backends, s.Ring = bs, rc
	return tp.Reconfigure(s)
}

func startProxyFor(t testing.TB, servers []*memcachedtest.Server, mod func(*Options)) *testProxy {
	t.Helper()
	opts := Options{
		Ring:           ring.Config{Partitions: 271, ReplicationFactor: 20, Load: 1.25},
		Timeout:        time.Second,
		ConnectTimeout: 500 * time.Millisecond,
		AutoEject:      true,
		FlushOnReadd:   true,
		Version:        "test",
		Logger:         zaptest.NewLogger(t),
	}
	opts.Health.Interval = 100 * time.Millisecond
	opts.Health.Timeout = 100 * time.Millisecond
	opts.Health.FailureLimit = 3
	opts.Health.SuccessLimit = 2
	for _, s := range servers {
		opts.Backends = append(opts.Backends, Backend{Addr: s.Addr, Weight: 1})
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("new proxy: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testProxy{Proxy: p, addr: l.Addr().String(), backends: servers}
}

// exchangeBound bounds how long one raw exchange may wait for its replies.
const exchangeBound = 5 * time.Second

// exchange sends input on a new connection, followed by a sentinel command
// whose reply marks the end of the replies to input, and returns everything
// read before the sentinel's reply (or before the server closed the
// connection, or before exchangeBound passed).
func exchange(t testing.TB, addr string, input []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	sentinel := []byte("set __sentinel__ 0 0 2\r\nok\r\nget __sentinel__\r\n")
	sentinelReply := []byte("STORED\r\nVALUE __sentinel__ 0 2\r\nok\r\nEND\r\n")
	_ = c.SetDeadline(time.Now().Add(exchangeBound))
	go func() { _, _ = c.Write(append(append([]byte{}, input...), sentinel...)) }()
	var got []byte
	buf := make([]byte, 64<<10)
	for !bytes.HasSuffix(got, sentinelReply) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if !errors.Is(err, io.EOF) && !isTimeout(err) && !errors.Is(err, net.ErrClosed) {
				var oe *net.OpError
				if !errors.As(err, &oe) {
					t.Fatalf("read from %s: %v", addr, err)
				}
			}
			return got
		}
	}
	return got[:len(got)-len(sentinelReply)]
}

// againstMemcached flushes the memcached at direct and the proxy at
// proxyAddr, sends input to each (exchange) and returns their replies,
// masked by mask: memcached's first.
func againstMemcached(t testing.TB, direct, proxyAddr, input string, mask func([]byte) []byte) (want, got []byte) {
	t.Helper()
	for _, addr := range []string{direct, proxyAddr} {
		if got := exchange(t, addr, []byte("flush_all\r\n")); string(got) != "OK\r\n" {
			t.Fatalf("flush %s: %q", addr, got)
		}
	}
	return mask(exchange(t, direct, []byte(input))), mask(exchange(t, proxyAddr, []byte(input)))
}

var casField = regexp.MustCompile(`(?m)^(VALUE \S+ \d+ \d+) \d+\r$`)

// maskCas replaces cas uniques, which differ between servers by design.
func maskCas(b []byte) []byte { return casField.ReplaceAll(b, []byte("$1 <cas>\r")) }

// series is one series of a metric family: its labels and its value (a
// gauge's or a counter's).
type series struct {
	labels map[string]string
	value  float64
}

// gatherSeries gathers p's metrics through a pedantic registry, which also
// checks them for consistency, and returns the series of the family name.
func gatherSeries(t *testing.T, p *Proxy, name string) []series {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []series
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s := series{labels: map[string]string{}, value: m.GetCounter().GetValue()}
			if m.Gauge != nil {
				s.value = m.GetGauge().GetValue()
			}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			out = append(out, s)
		}
	}
	return out
}
