package main

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// holder returns the index of the server that holds key, -1 if none does.
func holder(t *testing.T, servers []string, key string) int {
	t.Helper()
	at := -1
	for i, a := range servers {
		if got := memcachedtest.Send(t, a, "get "+key+"\r\n", "END\r\n", 1); got != "END\r\n" {
			if at >= 0 {
				t.Fatalf("%s is on two servers", key)
			}
			at = i
		}
	}
	return at
}

// TestRespellingLiveKeepsKeys edits the file of a running mcproxy to spell
// a backend's address another way, under its old address as its name: the
// keys stay where they were and keep their values (no flush), and new
// writes land where the old ones did. Then the ejection cap is changed
// live, and a file listing one server under two spellings is refused.
func TestRespellingLiveKeepsKeys(t *testing.T) {
	var be []string
	for i := 0; i < 3; i++ {
		be = append(be, memcachedtest.Start(t).Addr)
	}
	in := startInstance(t, memcachedtest.FreeAddr(t), "", be...)
	const n = 200
	where := make([]int, n)
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("live%d", i)
		memcachedtest.Send(t, in.listen, "set "+k+" 0 0 3\r\nold\r\n", "STORED\r\n", 1)
		where[i] = holder(t, be, k)
	}
	_, port, _ := net.SplitHostPort(be[0])
	respelled := "localhost:" + port
	in.write(t, configText(in.listen, "", fmt.Sprintf("{name: %q, addr: %q}", be[0], respelled), be[1], be[2]))
	waitStat(t, in.listen, "config_generation", "2")
	if got := memcachedtest.Stats(t, in.listen, "backends")["backend:"+be[0]+":addr"]; got != respelled {
		t.Fatalf("stats backends addr after the respelling: %q", got)
	}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("live%d", i)
		if got := memcachedtest.Send(t, in.listen, "get "+k+"\r\n", "END\r\n", 1); got != "VALUE "+k+" 0 3\r\nold\r\nEND\r\n" {
			t.Fatalf("%s after the respelling: %q (flushed or moved)", k, got)
		}
		memcachedtest.Send(t, in.listen, "set "+k+" 0 0 3\r\nnew\r\n", "STORED\r\n", 1)
		if at := holder(t, be, k); at != where[i] {
			t.Fatalf("%s was on server %d, is on %d after the respelling", k, where[i], at)
		}
	}

	in.write(t, strings.Replace(configText(in.listen, "", fmt.Sprintf("{name: %q, addr: %q}", be[0], respelled), be[1], be[2]),
		"health: {", "health: {max_ejected: 0, ", 1))
	waitStat(t, in.listen, "config_generation", "3")
	if st := memcachedtest.Stats(t, in.listen, "settings"); st["max_ejected"] != "0" || st["max_ejected_backends"] != "0" {
		t.Fatalf("stats settings after max_ejected 0: %q %q", st["max_ejected"], st["max_ejected_backends"])
	}

	in.write(t, configText(in.listen, "", be[0], respelled, be[1]))
	waitStat(t, in.listen, "config_reload_failures", "1")
	if got := memcachedtest.Stats(t, in.listen, "")["config_generation"]; got != "3" {
		t.Fatalf("a file listing one server twice was applied: generation %s", got)
	}
}
