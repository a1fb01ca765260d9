package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// backendErrorsMetric returns mcproxy_backend_errors_total for addr and kind.
func backendErrorsMetric(t *testing.T, p *Proxy, addr, kind string) float64 {
	t.Helper()
	for _, s := range gatherSeries(t, p, "mcproxy_backend_errors_total") {
		if s.labels["backend"] == addr && s.labels["kind"] == kind {
			return s.value
		}
	}
	t.Fatalf("no mcproxy_backend_errors_total{backend=%q,kind=%q}", addr, kind)
	return 0
}

// TestBackendValueForAnotherKey: a backend that answers "get k" with the
// value of another key. The client gets a miss, never the other value; the
// proxy closes that connection and dials again, counts a protocol error in
// stats backends and in the metrics, and tells the health checker.
func TestBackendValueForAnotherKey(t *testing.T) {
	fake := startFake(t, func(n int, f []string, _ []byte) string {
		if n == 1 {
			return valueBlock("get", "other", "secret") + "END\r\n"
		}
		return honest(f)
	})
	tp := fakeProxy(t, fake, 0, func(o *Options) {
		o.Health.AlwaysUp = false
		o.Health.FailureLimit = 1000 // watched, never ejected
	})
	c := memcachedtest.Dial(t, tp.addr)
	if got := memcachedtest.RoundTrip(t, c, "get k\r\n", "END\r\n", 1); got != "END\r\n" {
		t.Fatalf("get k from a backend that answers for another key: %q", got)
	}
	memcachedtest.WaitFor(t, "the proxy to close the lying connection", func() bool { return fake.closed.Load() >= 1 })
	// The next command goes on a new connection and is answered.
	if got := memcachedtest.RoundTrip(t, c, "get k\r\n", "END\r\n", 1); got != valueBlock("get", "k", fakeValue("k"))+"END\r\n" {
		t.Fatalf("get k after reconnecting: %q", got)
	}
	st := backendStats(t, c, fake.addr)
	if st["errors_protocol"] != "1" {
		t.Errorf("errors_protocol = %q, want 1 (stats %v)", st["errors_protocol"], st)
	}
	if st["errors_connection"] != "0" {
		t.Errorf("errors_connection = %q, want 0", st["errors_connection"])
	}
	if !strings.Contains(st["last_error"], "other") {
		t.Errorf("health checker's last error %q does not name the key", st["last_error"])
	}
	if v := backendErrorsMetric(t, tp.Proxy, fake.addr, "protocol"); v != 1 {
		t.Errorf("mcproxy_backend_errors_total{kind=protocol} = %v, want 1", v)
	}
}

// TestBackendExtraReplyNeverShifts: a backend sends one reply nobody asked
// for. Without a check every later reply on the connection is shifted by
// one, and the client that asked for k5 gets k4's value. With it, each
// client gets its own key's value or a miss, and the stray reply is counted.
func TestBackendExtraReplyNeverShifts(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"extra value", valueBlock("get", "k3", fakeValue("k3")) + "END\r\n"},
		{"extra miss", "END\r\n"},
		{"extra line", "STORED\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := startFake(t, func(n int, f []string, _ []byte) string {
				if len(f) == 2 && f[1] == "k3" {
					return honest(f) + tc.extra
				}
				return honest(f)
			})
			tp := fakeProxy(t, fake, 0, nil)
			c := memcachedtest.Dial(t, tp.addr)
			var pipeline strings.Builder
			for i := 1; i <= 10; i++ {
				fmt.Fprintf(&pipeline, "get k%d\r\n", i)
			}
			// Ten replies, each ending in END: split after each END, the
			// last piece is empty.
			replies := strings.SplitAfter(memcachedtest.RoundTrip(t, c, pipeline.String(), "END\r\n", 10), "END\r\n")
			if len(replies) != 11 || replies[10] != "" {
				t.Fatalf("want 10 replies, got %q", replies)
			}
			for i, got := range replies[:10] {
				k := fmt.Sprintf("k%d", i+1)
				if got != "END\r\n" && got != valueBlock("get", k, fakeValue(k))+"END\r\n" {
					t.Errorf("get %s: %q", k, got)
				}
			}
			memcachedtest.WaitFor(t, "the stray reply to be counted", func() bool {
				return backendStats(t, c, fake.addr)["errors_protocol"] != "0"
			})
			if got := memcachedtest.RoundTrip(t, c, "get k11\r\n", "END\r\n", 1); got != valueBlock("get", "k11", fakeValue("k11"))+"END\r\n" {
				t.Fatalf("get after the stray reply: %q", got)
			}
		})
	}
}

// TestBackendReplyWithNothingOutstanding: a reply that arrives when no
// request is in flight closes the connection and is counted once.
func TestBackendReplyWithNothingOutstanding(t *testing.T) {
	fake := startFake(t, func(n int, f []string, _ []byte) string {
		if n == 1 {
			return honest(f) + "END\r\n"
		}
		return honest(f)
	})
	tp := fakeProxy(t, fake, 0, nil)
	c := memcachedtest.Dial(t, tp.addr)
	if got := memcachedtest.RoundTrip(t, c, "get a\r\n", "END\r\n", 1); got != valueBlock("get", "a", fakeValue("a"))+"END\r\n" {
		t.Fatalf("get a: %q", got)
	}
	memcachedtest.WaitFor(t, "the unsolicited reply to be counted", func() bool {
		return backendStats(t, c, fake.addr)["errors_protocol"] == "1"
	})
	memcachedtest.WaitFor(t, "the proxy to close the connection", func() bool { return fake.closed.Load() >= 1 })
}

// TestMultiGetWithLyingBackend: a multi-get over a real memcached and a
// backend that lies about its keys. The real backend's values arrive; the
// liar's keys are all misses (its whole reply is refused); nothing of one
// key is given for another; only the liar is charged.
func TestMultiGetWithLyingBackend(t *testing.T) {
	lies := map[string]func(keys []string, forged string) string{
		// the values of the keys asked, in the reverse order
		"out of order": func(keys []string, _ string) string {
			var b strings.Builder
			for i := len(keys) - 1; i >= 0; i-- {
				b.WriteString(valueBlock("get", keys[i], fakeValue(keys[i])))
			}
			return b.String() + "END\r\n"
		},
		// a key the client asked for, which lives on the other backend
		"another backend's key": func(_ []string, forged string) string {
			return valueBlock("get", forged, "forged") + "END\r\n"
		},
		"twice": func(keys []string, _ string) string {
			return valueBlock("get", keys[0], fakeValue(keys[0])) + valueBlock("get", keys[0], fakeValue(keys[0])) + "END\r\n"
		},
	}
	for name, lie := range lies {
		t.Run(name, func(t *testing.T) {
			var forged atomic.Pointer[string] // set before the fake sees a get
			fake := startFake(t, func(n int, f []string, _ []byte) string {
				if f[0] == "get" && len(f) > 2 {
					return lie(f[1:], *forged.Load())
				}
				return honest(f)
			})
			tp := fakeProxy(t, fake, 1, nil)
			realAddr := tp.backends[0].Addr
			c := memcachedtest.Dial(t, tp.addr)
			var realKeys, fakeKeys []string
			for i := 0; i < 3; i++ {
				realKeys = append(realKeys, keyOn(t, tp, realAddr, fmt.Sprintf("real%d-", i)))
				fakeKeys = append(fakeKeys, keyOn(t, tp, fake.addr, fmt.Sprintf("fake%d-", i)))
			}
			forged.Store(&realKeys[0])
			want := ""
			for _, k := range realKeys {
				memcachedtest.RoundTrip(t, c, fmt.Sprintf("set %s 0 0 %d\r\nreal-%s\r\n", k, len("real-"+k), k), "STORED\r\n", 1)
			}
			// Interleaved: real, fake, real, fake, ...
			var asked []string
			for i := range realKeys {
				asked = append(asked, realKeys[i], fakeKeys[i])
				want += valueBlock("get", realKeys[i], "real-"+realKeys[i])
			}
			want += "END\r\n"
			got := memcachedtest.RoundTrip(t, c, "get "+strings.Join(asked, " ")+"\r\n", "END\r\n", 1)
			if got != want {
				t.Fatalf("multi-get over a liar:\n got %q\nwant %q", got, want)
			}
			// Keys that all live on the liar go as one command; its reply is
			// refused all the same.
			if got := memcachedtest.RoundTrip(t, c, "get "+strings.Join(fakeKeys, " ")+"\r\n", "END\r\n", 1); got != "END\r\n" {
				t.Fatalf("multi-get of the liar's keys only: %q", got)
			}
			if st := backendStats(t, c, fake.addr); st["errors_protocol"] != "2" {
				t.Errorf("liar's errors_protocol = %q, want 2", st["errors_protocol"])
			}
			if st := backendStats(t, c, realAddr); st["errors"] != "0" {
				t.Errorf("real backend charged: %v", st)
			}
		})
	}
}

// TestBackendWrongOrGarbageReply: replies of the wrong kind for the command,
// a cas unique where memcached sends none (and none where it always does),
// and bytes that are no reply at all. Each closes the connection: a
// retrieval gets a miss, anything else SERVER_ERROR, and each is counted.
func TestBackendWrongOrGarbageReply(t *testing.T) {
	cases := []struct {
		cmd, lie, want string
	}{
		{"get lie\r\n", "STORED\r\n", "END\r\n"},
		{"get lie\r\n", "DELETED\r\n", "END\r\n"},
		{"delete lie\r\n", "STORED\r\n", protocolErrorReply},
		{"delete lie\r\n", "VALUE lie 0 1\r\nx\r\nEND\r\n", protocolErrorReply},
		{"delete lie\r\n", "END\r\n", protocolErrorReply},
		{"touch lie 0\r\n", "DELETED\r\n", protocolErrorReply},
		{"incr lie 1\r\n", "TOUCHED\r\n", protocolErrorReply},
		{"incr lie 1\r\n", "STORED\r\n", protocolErrorReply},
		{"set lie 0 0 1\r\nx\r\n", "DELETED\r\n", protocolErrorReply},
		{"set lie 0 0 1\r\nx\r\n", "12\r\n", protocolErrorReply},
		{"cas lie 0 0 1 5\r\nx\r\n", "TOUCHED\r\n", protocolErrorReply},
		{"get lie\r\n", valueBlock("gets", "lie", "x") + "END\r\n", "END\r\n"},
		{"gat 0 lie\r\n", valueBlock("gats", "lie", "x") + "END\r\n", "END\r\n"},
		{"gets lie\r\n", valueBlock("get", "lie", "x") + "END\r\n", "END\r\n"},
		{"gats 0 lie\r\n", valueBlock("gat", "lie", "x") + "END\r\n", "END\r\n"},
		// garbage
		{"get lie\r\n", "\x00\xff\xfe garbage\r\n", "END\r\n"},
		{"get lie\r\n", "VALUE lie 0 -1\r\n", "END\r\n"},
		{"get lie\r\n", "END\n", "END\r\n"},
		{"set lie 0 0 1\r\nx\r\n", "STORED \r\n", protocolErrorReply},
		{"delete lie\r\n", "HELLO\r\n", protocolErrorReply},
	}
	fake := startFake(t, func(n int, f []string, _ []byte) string {
		if n%2 == 1 {
			return cases[n/2].lie
		}
		return honest(f)
	})
	tp := fakeProxy(t, fake, 0, nil)
	c := memcachedtest.Dial(t, tp.addr)
	for i, tc := range cases {
		got := memcachedtest.RoundTrip(t, c, tc.cmd, "\r\n", 1)
		if got != tc.want {
			t.Errorf("%q answered %q: client got %q, want %q", tc.cmd, tc.lie, got, tc.want)
		}
		// The connection is new and in step: the next command is answered.
		if got := memcachedtest.RoundTrip(t, c, "get ok\r\n", "END\r\n", 1); got != valueBlock("get", "ok", fakeValue("ok"))+"END\r\n" {
			t.Fatalf("after %q answered %q: get ok: %q", tc.cmd, tc.lie, got)
		}
		if n := backendStats(t, c, fake.addr)["errors_protocol"]; n != strconv.Itoa(i+1) {
			t.Fatalf("after %q answered %q: errors_protocol %s, want %d", tc.cmd, tc.lie, n, i+1)
		}
	}
	if st := backendStats(t, c, fake.addr); st["errors_connection"] != "0" || st["errors_timeout"] != "0" {
		t.Errorf("protocol errors counted as another kind: %v", st)
	}
}

const protocolErrorReply = "SERVER_ERROR backend protocol error\r\n"

// TestLargeSetAfterIdle: a set larger than the writer's buffer, sent on a
// backend connection that has been idle for longer than backend.timeout,
// is stored; the next command is served; nothing is charged to the backend.
// (The write deadline must be set before the bytes go out, not after: a
// large write bypasses the buffer.)
func TestLargeSetAfterIdle(t *testing.T) {
	const timeout = 200 * time.Millisecond
	tp := startProxy(t, 1, func(o *Options) {
		o.Connections = 1
		o.Timeout = timeout
	})
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "set small 0 0 1\r\nx\r\n", "STORED\r\n", 1)
	// The idle time is the point of the test: wait it out.
	idle := time.Now()
	for time.Since(idle) < timeout+300*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
	}
	big := strings.Repeat("B", 100<<10)
	if got := memcachedtest.RoundTrip(t, c, fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(big), big), "\r\n", 1); got != "STORED\r\n" {
		t.Fatalf("100 KB set after an idle period: %q", got)
	}
	if got := memcachedtest.RoundTrip(t, c, "get small\r\n", "END\r\n", 1); got != "VALUE small 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("get after the large set: %q", got)
	}
	if got := memcachedtest.RoundTrip(t, c, "get big\r\n", "END\r\n", 1); got != fmt.Sprintf("VALUE big 0 %d\r\n%s\r\nEND\r\n", len(big), big) {
		t.Fatalf("get big: %.80q", got)
	}
	if st := backendStats(t, c, tp.backends[0].Addr); st["errors"] != "0" {
		t.Fatalf("a healthy backend was charged: %v", st)
	}
}
