package memcachedtest

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// rawWait bounds one raw exchange.
const rawWait = 10 * time.Second

// Dial connects to addr (a memcached or an mcproxy) for a raw exchange and
// closes the connection at the end of the test.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("memcachedtest: dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// RoundTrip writes cmds on c as they are, byte for byte, and reads until
// the reply ends with end and holds it n times in all (n = 1: until it ends
// with end), within rawWait. It is for tests of exact replies, where a
// client that parses would hide what was sent.
func RoundTrip(t testing.TB, c net.Conn, cmds, end string, n int) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(rawWait))
	if _, err := c.Write([]byte(cmds)); err != nil {
		t.Fatalf("memcachedtest: write %.60q: %v", cmds, err)
	}
	var got []byte
	buf := make([]byte, 64<<10)
	for !bytes.HasSuffix(got, []byte(end)) || bytes.Count(got, []byte(end)) < n {
		k, err := c.Read(buf)
		got = append(got, buf[:k]...)
		if err != nil {
			t.Fatalf("memcachedtest: reply to %.60q: read %q then %v", cmds, got, err)
		}
	}
	return string(got)
}

// Send is RoundTrip on a new connection to addr, closed after it.
func Send(t testing.TB, addr, cmds, end string, n int) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("memcachedtest: dial %s: %v", addr, err)
	}
	defer c.Close()
	return RoundTrip(t, c, cmds, end, n)
}
