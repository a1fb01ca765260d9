package proxy

import (
	"strings"
	"testing"
)

// TestMetaCommandsRefusedInStep sends meta commands to a proxy that does
// not route them yet: each gets one refusal (mn its MN), ms's data block is
// skipped and never runs as a command (a "flush_all" inside it flushes
// nothing), a refused ms line leaves its block to memcached's rule, and the
// connection stays in step for the text commands around them.
func TestMetaCommandsRefusedInStep(t *testing.T) {
	tp := startProxy(t, 2, nil)
	big := strings.Repeat("b", 2<<20)
	in := "set foo 0 0 3\r\nbar\r\n" +
		"ms foo 9\r\nflush_all\r\n" +
		"ms foo 9 q T0\r\nflush_all\r\n" +
		"mg foo v\r\nmd foo q\r\nma foo\r\nme foo\r\nmn\r\n" +
		"ms foo 9 S9\r\nflush_all\r\n" + // refused by the parser, block swallowed as memcached does
		"ms big " + "2097152" + "\r\n" + big + "\r\n" +
		"mg foo v v\r\n" +
		"get foo\r\n"
	want := "STORED\r\n" +
		errMetaNotSupported + "\r\n" +
		errMetaNotSupported + "\r\n" +
		strings.Repeat(errMetaNotSupported+"\r\n", 4) + "MN\r\n" +
		"CLIENT_ERROR invalid flag\r\n" +
		"SERVER_ERROR object too large for cache\r\n" +
		"CLIENT_ERROR duplicate flag\r\n" +
		"VALUE foo 0 3\r\nbar\r\nEND\r\n"
	if got := string(exchange(t, tp.addr, []byte(in))); got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}
