package memctest

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// statsWait bounds one stats exchange.
const statsWait = 5 * time.Second

// Stats sends "stats" (or "stats <group>" when group is not empty) to addr,
// a memcached or an mcproxy, on a new connection and returns the STAT lines
// as name -> value.
func Stats(t testing.TB, addr, group string) map[string]string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("memctest: stats: dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(statsWait))
	cmd := "stats\r\n"
	if group != "" {
		cmd = "stats " + group + "\r\n"
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		t.Fatalf("memctest: stats: write to %s: %v", addr, err)
	}
	var buf []byte
	tmp := make([]byte, 8192)
	for !bytes.HasSuffix(buf, []byte("END\r\n")) {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			t.Fatalf("memctest: %s from %s: read %q then %v", strings.TrimSpace(cmd), addr, buf, err)
		}
	}
	return ParseStats(string(buf))
}

// ParseStats turns STAT lines into name -> value.
func ParseStats(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\r\n") {
		if f := strings.SplitN(line, " ", 3); len(f) == 3 && f[0] == "STAT" {
			m[f[1]] = f[2]
		}
	}
	return m
}

// Stat returns one numeric stat of addr.
func Stat(t testing.TB, addr, name string) int {
	t.Helper()
	v, ok := Stats(t, addr, "")[name]
	if !ok {
		t.Fatalf("memctest: no stat %s from %s", name, addr)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("memctest: stat %s of %s: %v", name, addr, err)
	}
	return n
}
