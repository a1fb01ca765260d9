package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// httpPost is what a web page can make a browser send to 127.0.0.1:11211: a
// POST whose body is memcached commands.
var httpPost = func() string {
	body := "set evil 0 0 3\r\nbad\r\n"
	return "POST / HTTP/1.1\r\nHost: 127.0.0.1:11211\r\nContent-Type: text/plain\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}()

// readToClose sends input on a new connection and returns everything read
// until the server closes it; closed is false when it was still open after
// exchangeBound.
func readToClose(t *testing.T, addr string, input []byte) (got []byte, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(exchangeBound))
	if _, err := c.Write(input); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err = io.ReadAll(c)
	if isTimeout(err) {
		return got, false
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return got, true
}

// protocolRejects reads mcproxy_client_protocol_rejects_total by kind.
func protocolRejects(t *testing.T, p *Proxy) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range gatherSeries(t, p, "mcproxy_client_protocol_rejects_total") {
		out[s.labels["kind"]] = s.value
	}
	return out
}

func statLine(t *testing.T, addr, name string) string {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	for _, line := range strings.Split(memcachedtest.RoundTrip(t, c, "stats\r\n", "END\r\n", 1), "\r\n") {
		if strings.HasPrefix(line, "STAT "+name+" ") {
			return strings.TrimPrefix(line, "STAT "+name+" ")
		}
	}
	t.Fatalf("no stat %s", name)
	return ""
}

// TestHTTPPostIsNotRun: a browser's POST with memcached commands in its
// body closes the connection at the request line, as memcached does; the
// body's set never reaches a backend, and the reject is counted.
func TestHTTPPostIsNotRun(t *testing.T) {
	tp := startProxy(t, 1, nil)
	got, closed := readToClose(t, tp.addr, []byte(httpPost))
	if !closed || len(got) != 0 {
		t.Fatalf("got %q, closed %v; want nothing and the connection closed", got, closed)
	}
	if v := exchange(t, tp.backends[0].Addr, []byte("get evil\r\n")); string(v) != "END\r\n" {
		t.Fatalf("the POST body's set was stored: backend answers %q", v)
	}
	if v := statLine(t, tp.addr, "protocol_rejects_http"); v != "1" {
		t.Errorf("stat protocol_rejects_http = %s, want 1", v)
	}
	if m := protocolRejects(t, tp.Proxy); m["http"] != 1 || m["binary"] != 0 || m["tls"] != 0 {
		t.Errorf("mcproxy_client_protocol_rejects_total = %v", m)
	}
}

// TestHTTPRejectAgainstMemcached sends the same HTTP requests to memcached
// and to the proxy: the same reply bytes (none) and both connections closed.
// Replies owed for commands before the request line differ on purpose: see
// the proxy's reply in the test below.
func TestHTTPRejectAgainstMemcached(t *testing.T) {
	direct := memcachedtest.Start(t)
	tp := startProxy(t, 2, nil)
	for _, in := range []string{
		httpPost,
		"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		"OPTIONS / HTTP/1.1\r\nOrigin: http://example.com\r\n\r\n",
		"HEAD /x HTTP/1.0\r\n\r\nversion\r\n",
	} {
		want, wantClosed := readToClose(t, direct.Addr, []byte(in))
		got, gotClosed := readToClose(t, tp.addr, []byte(in))
		if !bytes.Equal(got, want) || gotClosed != wantClosed || !gotClosed {
			t.Errorf("%q:\nmemcached %q closed=%v\nmcproxy   %q closed=%v", in, want, wantClosed, got, gotClosed)
		}
	}
	// memcached answers these lines instead of closing; so does the proxy.
	for _, in := range []string{"GET / http/1.1\r\n", "gxx / HTTP/1.1\r\n", "GET /HTTP/1.1\r\n"} {
		want := exchange(t, direct.Addr, []byte(in))
		got := exchange(t, tp.addr, []byte(in))
		if !bytes.Equal(got, want) {
			t.Errorf("%q: memcached %q, mcproxy %q", in, want, got)
		}
	}
}

// TestHTTPAfterCommandsGetsOwedReplies: commands before the request line
// are answered before the close. (memcached 1.6 drops replies queued in the
// same read as the request line, an artefact of its output batching.)
func TestHTTPAfterCommandsGetsOwedReplies(t *testing.T) {
	tp := startProxy(t, 1, nil)
	got, closed := readToClose(t, tp.addr, []byte("set a 0 0 1\r\nx\r\nGET / HTTP/1.1\r\nversion\r\n"))
	if string(got) != "STORED\r\n" || !closed {
		t.Fatalf("got %q closed=%v, want STORED then the close", got, closed)
	}
}

// TestBinaryProtocolRefused: a binary-protocol request gets memcached's
// binary "Unknown command" answer, with its opcode and opaque, then the
// close; the text command glued after it is not run.
func TestBinaryProtocolRefused(t *testing.T) {
	tp := startProxy(t, 1, nil)
	// A binary GETK (0x0c) of key "k", opaque 0x01020304, followed by text.
	req := []byte("\x80\x0c\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00k")
	got, closed := readToClose(t, tp.addr, append(req, "set glued 0 0 1\r\nx\r\n"...))
	want := "\x81\x0c\x00\x00\x00\x00\x00\x81\x00\x00\x00\x0f\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00Unknown command"
	if string(got) != want || !closed {
		t.Fatalf("got %q closed=%v\nwant %q and the close", got, closed, want)
	}
	if v := exchange(t, tp.backends[0].Addr, []byte("get glued\r\n")); string(v) != "END\r\n" {
		t.Fatalf("the text after the binary request ran: backend answers %q", v)
	}
	if m := protocolRejects(t, tp.Proxy); m["binary"] != 1 {
		t.Errorf("mcproxy_client_protocol_rejects_total = %v", m)
	}
}

// TestTLSClientHelloRefused: a TLS client (a real ClientHello from
// crypto/tls) is closed at once instead of waiting for a newline.
func TestTLSClientHelloRefused(t *testing.T) {
	tp := startProxy(t, 1, nil)
	c := memcachedtest.Dial(t, tp.addr)
	_ = c.SetDeadline(time.Now().Add(exchangeBound))
	tc := tls.Client(c, &tls.Config{ServerName: "mcproxy", MinVersion: tls.VersionTLS12})
	err := tc.Handshake()
	if err == nil || isTimeout(err) {
		t.Fatalf("handshake: %v; want the connection closed", err)
	}
	// The proxy has closed its end: reading the raw socket ends, not times out.
	if _, err := io.ReadAll(c); isTimeout(err) {
		t.Fatalf("the connection is still open: %v", err)
	}
	if m := protocolRejects(t, tp.Proxy); m["tls"] != 1 {
		t.Errorf("mcproxy_client_protocol_rejects_total = %v", m)
	}
	if v := statLine(t, tp.addr, "protocol_rejects_tls"); v != "1" {
		t.Errorf("stat protocol_rejects_tls = %s, want 1", v)
	}
}

// TestTextClientUnaffected: text clients, including ones whose data blocks
// hold binary, TLS or HTTP bytes, are served as before and not counted.
func TestTextClientUnaffected(t *testing.T) {
	tp := startProxy(t, 2, nil)
	c := memcachedtest.Dial(t, tp.addr)
	for _, v := range []string{"\x80\x0a\x00\x00", "\x16\x03\x01", "GET / HTTP/1.1"} {
		cmd := fmt.Sprintf("set k 0 0 %d\r\n%s\r\nget k\r\n", len(v), v)
		want := fmt.Sprintf("STORED\r\nVALUE k 0 %d\r\n%s\r\nEND\r\n", len(v), v)
		if got := memcachedtest.RoundTrip(t, c, cmd, "END\r\n", 1); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if m := protocolRejects(t, tp.Proxy); m["http"]+m["binary"]+m["tls"] != 0 {
		t.Errorf("text client counted as a reject: %v", m)
	}
}
