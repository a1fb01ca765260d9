package memcachedtest

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// InBatches sends keys to addr 100 at a time, pipelined, on one
// connection: cmd makes the request of a batch, and reply reads its reply
// (or fails the test). Each batch is bounded by rawWait.
func InBatches(t testing.TB, addr string, keys [][]byte, cmd func(batch [][]byte) []byte, reply func(r *bufio.Reader, batch [][]byte)) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("memcachedtest: dial %s: %v", addr, err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for len(keys) > 0 {
		batch := keys[:min(100, len(keys))]
		keys = keys[len(batch):]
		_ = c.SetDeadline(time.Now().Add(rawWait))
		if _, err := c.Write(cmd(batch)); err != nil {
			t.Fatalf("memcachedtest: write to %s: %v", addr, err)
		}
		reply(r, batch)
	}
}

// SetAll stores every key, with the value "v", through addr (memcached or
// a proxy), 100 at a time pipelined, and fails unless each is STORED.
func SetAll(t testing.TB, addr string, keys [][]byte) {
	t.Helper()
	InBatches(t, addr, keys, func(batch [][]byte) []byte {
		var cmd []byte
		for _, k := range batch {
			cmd = append(append(append(cmd, "set "...), k...), " 0 0 1\r\nv\r\n"...)
		}
		return cmd
	}, func(r *bufio.Reader, batch [][]byte) {
		for _, k := range batch {
			line, err := r.ReadString('\n')
			if err != nil || line != "STORED\r\n" {
				t.Fatalf("memcachedtest: set %q through %s: %q %v", k, addr, line, err)
			}
		}
	})
}
