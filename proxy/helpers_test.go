package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
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

// Talking to the proxy.

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

func newClient(t testing.TB, addr string) *memcache.Client {
	c := memcache.New(addr)
	c.Timeout = 3 * time.Second
	c.MaxIdleConns = 8
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// expectLines sends cmd on c and reads n reply lines.
func expectLines(t *testing.T, c net.Conn, cmd string, n int) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(exchangeBound))
	if _, err := c.Write([]byte(cmd)); err != nil {
		t.Fatalf("write %q: %v", cmd, err)
	}
	var got []byte
	buf := make([]byte, 1)
	for strings.Count(string(got), "\r\n") < n {
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("reply to %q: read %q then %v", cmd, got, err)
		}
		got = append(got, buf[0])
	}
	return string(got)
}

// sessionOf returns the proxy's session of client connection c.
func sessionOf(t *testing.T, tp *testProxy, c net.Conn) *session {
	t.Helper()
	var found *session
	memcachedtest.WaitFor(t, "the proxy to accept the client", func() bool {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		for s := range tp.sessions {
			if s.remote == c.LocalAddr().String() {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// parked reports whether s has stopped reading its client for the output
// limit: it does not read the socket and nothing it sent is still waiting
// for a backend, so nothing changes until the client reads. It asks s's
// loop, which owns that state.
func parked(s *session) bool {
	var ok bool
	s.l.call(func() {
		if !s.paused {
			return
		}
		for r := s.head; r != nil; r = r.next {
			if !r.done {
				return
			}
		}
		ok = true
	})
	return ok
}

// readExactly reads exactly len(want) bytes from c and compares them.
func readExactly(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	got := make([]byte, 0, len(want))
	buf := make([]byte, 256<<10)
	for len(got) < len(want) {
		_ = c.SetReadDeadline(time.Now().Add(exchangeBound))
		n, err := c.Read(buf[:min(len(buf), len(want)-len(got))])
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read %d of %d reply bytes: %v", len(got), len(want), err)
		}
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("replies differ at byte %d of %d: got %.80q, want %.80q", i, len(want), got[i:], want[i:])
	}
}

// waitInFlight waits until a request has been written to one of addr's
// backend connections and awaits its reply.
func waitInFlight(t *testing.T, tp *testProxy, addr string) {
	t.Helper()
	memcachedtest.WaitFor(t, "a request in flight to "+addr, func() bool {
		n := 0
		for _, b := range tp.pool0().all {
			if b.addr != addr {
				continue
			}
			for _, c := range b.conns {
				c.l.call(func() { n += c.inflight.len() })
			}
		}
		return n > 0
	})
}

// Holding the proxy to memcached.

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

// differentialCase is one input of a differential test: a stream of
// commands sent as it is to memcached and through the proxy.
type differentialCase struct {
	name  string
	input string
}

// matchCases sends each case to a real memcached and through the proxy
// over three backends, both freshly flushed, and compares the replies byte
// for byte once mask has masked what differs between servers by design.
func matchCases(t *testing.T, cases []differentialCase, mask func([]byte) []byte) {
	direct := memcachedtest.Start(t)
	tp := startProxy(t, 3, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, got := againstMemcached(t, direct.Addr, tp.addr, tc.input, mask)
			if !bytes.Equal(got, want) {
				t.Errorf("input %s\nmemcached: %s\nmcproxy:   %s", clipQ(tc.input), clipQ(string(want)), clipQ(string(got)))
			}
		})
	}
}

// matchRandomStreams is matchCases for seeded random streams: seeds 1 to
// streams, each a stream of 1 to maxCommands commands from command. A
// failure prints the seed and the stream.
func matchRandomStreams(t *testing.T, streams, maxCommands int, command func(*rand.Rand) string, mask func([]byte) []byte) {
	direct := memcachedtest.Start(t)
	tp := startProxy(t, 3, nil)
	for seed := int64(1); seed <= int64(streams); seed++ {
		rnd := rand.New(rand.NewSource(seed))
		var in strings.Builder
		for i := rnd.Intn(maxCommands) + 1; i > 0; i-- {
			in.WriteString(command(rnd))
		}
		want, got := againstMemcached(t, direct.Addr, tp.addr, in.String(), mask)
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: input %s\nmemcached: %s\nmcproxy:   %s", seed, clipQ(in.String()), clipQ(string(want)), clipQ(string(got)))
		}
	}
}

// maskMeta masks what differs between servers by design or by the clock:
// cas uniques (text and c), remaining TTL (t) and seconds since access (l),
// which a second boundary may move, me's fields, and the padding of a
// decremented counter (unpadNumbers).
func maskMeta(b []byte) []byte {
	b = maskCas(unpadNumbers(b))
	for range 4 { // a line may carry several of the flags
		b = metaCasFlag.ReplaceAll(b, []byte("$1<cas>"))
		b = metaTTLFlag.ReplaceAll(b, []byte("$1<n>"))
	}
	return metaDebug.ReplaceAll(b, []byte("$1 <fields>\r"))
}

// memcachedTool is the path of memcached-tool from Debian's memcached
// package, or "" when it or perl is missing.
func memcachedTool(t *testing.T) string {
	const path = "/usr/share/memcached/scripts/memcached-tool"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("memcached-tool not installed (Debian's memcached package ships it at %s)", path)
	}
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("perl not installed; memcached-tool is a perl script")
	}
	return path
}

// clipQ quotes s, shortening long values so a failure stays readable.
func clipQ(s string) string {
	if len(s) > 600 {
		return fmt.Sprintf("%q...(%d bytes)", s[:600], len(s))
	}
	return fmt.Sprintf("%q", s)
}

var (
	metaCasFlag = regexp.MustCompile(`(?m)^((?:VA \d+|HD|EN|NS|EX|NF)[^\r\n]*? c)\d+`)
	metaTTLFlag = regexp.MustCompile(`(?m)^((?:VA \d+|HD|EN|NS|EX|NF)[^\r\n]*? [tl])\d+`)
	metaDebug   = regexp.MustCompile(`(?m)^(ME \S+) .*\r$`)
)

// paddedNumber is a value (text VALUE or meta VA) that is a number padded
// with spaces: memcached decrements a counter in place, padding it, only
// when no reply still in its output queue holds the item, so whether "10"
// decremented reads "9 " or "9" depends on how its replies were batched.
var paddedNumber = regexp.MustCompile(`(?m)^(VALUE \S+ \d+ |VA )(\d+)([^\r\n]*\r\n)(\d+)( +)\r$`)

func unpadNumbers(b []byte) []byte {
	return paddedNumber.ReplaceAllFunc(b, func(m []byte) []byte {
		g := paddedNumber.FindSubmatch(m)
		if n, err := strconv.Atoi(string(g[2])); err != nil || n != len(g[4])+len(g[5]) {
			return m
		}
		return []byte(string(g[1]) + strconv.Itoa(len(g[4])) + string(g[3]) + string(g[4]) + "\r")
	})
}

// Where keys go, and which backends are in the ring.

// waitCapped waits until the named backend's capped state is want.
func waitCapped(t *testing.T, tp *testProxy, name string, want bool) {
	t.Helper()
	memcachedtest.WaitFor(t, fmt.Sprintf("backend %s capped to be %v", name, want), func() bool {
		for _, b := range tp.pool0().all {
			if b.name == name && b.capped.Load() == want {
				return true
			}
		}
		return false
	})
}

// locationOf returns the address the proxy's current ring sends key to.
func locationOf(tp *testProxy, key string) string {
	tab := tp.pool0()
	return tab.members[tab.place.Locate([]byte(key))].addr
}

// inRing reports whether addr is a member of the proxy's current ring.
func inRing(tp *testProxy, addr string) bool {
	for _, b := range tp.pool0().members {
		if b.addr == addr {
			return true
		}
	}
	return false
}

// keyOn returns a key that the proxy's current ring places on addr.
func keyOn(t testing.TB, tp *testProxy, addr, prefix string) string {
	t.Helper()
	tab := tp.pool0()
	for i := 0; i < 100000; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if tab.members[tab.place.Locate([]byte(k))].addr == addr {
			return k
		}
	}
	t.Fatalf("no key maps to %s", addr)
	return ""
}

// keysOn returns n keys that the proxy's current ring places on addr:
// keyOn's with the prefixes prefix0:, prefix1: and so on.
func keysOn(t testing.TB, tp *testProxy, addr, prefix string, n int) []string {
	t.Helper()
	var keys []string
	for i := 0; i < n; i++ {
		keys = append(keys, keyOn(t, tp, addr, fmt.Sprintf("%s%d:", prefix, i)))
	}
	return keys
}

// storeDeadAndAlive stores x under a key whose home is victim ("dead")
// and y under one whose home is other ("alive"), on a new connection to tp
// that it returns with the keys.
func storeDeadAndAlive(t *testing.T, tp *testProxy, victim, other string) (c net.Conn, dead, alive string) {
	t.Helper()
	dead = keyOn(t, tp, victim, "dead")
	alive = keyOn(t, tp, other, "alive")
	c = memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 1\r\nx\r\nset %s 0 0 1\r\ny\r\n", dead, alive), "STORED\r\nSTORED\r\n", 1)
	return c, dead, alive
}

// waitInRing waits until addr's membership of the ring is want.
func waitInRing(t *testing.T, tp *testProxy, addr string, want bool) {
	t.Helper()
	memcachedtest.WaitFor(t, fmt.Sprintf("backend %s in ring to be %v", addr, want), func() bool { return inRing(tp, addr) == want })
}

// Stats and metrics.

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

func parseStats(s string) map[string]string { return memcachedtest.ParseStats(s) }

// metric returns the value of the series name{backend=backend} of the
// proxy's metrics (gathered as gatherSeries does).
func metric(t *testing.T, tp *testProxy, name, backend string) float64 {
	t.Helper()
	for _, s := range gatherSeries(t, tp.Proxy, name) {
		if s.labels["backend"] == backend {
			return s.value
		}
	}
	t.Fatalf("no series %s{backend=%q}", name, backend)
	return 0
}

// proxyStat returns one of the proxy's own stats.
func proxyStat(t *testing.T, tp *testProxy, name string) int {
	t.Helper()
	return memcachedtest.Stat(t, tp.addr, name)
}

// backendStats returns the proxy's "stats backends" for addr, without the
// "backend:<addr>:" prefix.
func backendStats(t *testing.T, c net.Conn, addr string) map[string]string {
	t.Helper()
	all := parseStats(memcachedtest.RoundTrip(t, c, "stats backends\r\n", "END\r\n", 1))
	out := map[string]string{}
	for k, v := range all {
		if name, ok := strings.CutPrefix(k, "backend:"+addr+":"); ok {
			out[name] = v
		}
	}
	return out
}

// commandsMetric reads mcproxy_commands_total{command, result}.
func commandsMetric(t *testing.T, tp *testProxy, command, result string) float64 {
	t.Helper()
	for _, s := range gatherSeries(t, tp.Proxy, "mcproxy_commands_total") {
		if s.labels["command"] == command && s.labels["result"] == result {
			return s.value
		}
	}
	return 0
}

// pool0 returns the table of the proxy's first pool: the only one in the
// tests that configure backends without named pools.
func (p *Proxy) pool0() *poolTable { return p.table.Load().pools[0] }
