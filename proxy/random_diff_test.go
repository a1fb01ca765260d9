package proxy

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// randomCommand returns one command (with its data block) drawn from a
// grammar of valid and slightly broken memcached commands. It avoids what
// is known to differ on purpose or by memcached's batching (keys over 250
// bytes, control characters in keys, stats and version, delayed flushes).
func randomCommand(rnd *rand.Rand) string {
	keys := []string{"a", "b", "c", "n", "k:1", "k:2", "long" + strings.Repeat("x", 200)}
	key := func() string { return keys[rnd.Intn(len(keys))] }
	num := func() string {
		return []string{"0", "1", "5", "100", "-1", "4294967295", "4294967296", "18446744073709551615", "x", "+3", "007"}[rnd.Intn(11)]
	}
	nr := ""
	if rnd.Intn(5) == 0 {
		nr = " noreply"
	}
	value := func(n int) string { return strings.Repeat(string(rune('a'+rnd.Intn(26))), n) }
	switch rnd.Intn(14) {
	case 0, 1:
		n := rnd.Intn(20)
		data := value(n)
		if rnd.Intn(8) == 0 {
			data = value(n + 1) // bad data chunk
		}
		op := []string{"set", "add", "replace", "append", "prepend"}[rnd.Intn(5)]
		return fmt.Sprintf("%s %s %s 0 %d%s\r\n%s\r\n", op, key(), []string{"0", "7", "65535"}[rnd.Intn(3)], n, nr, data)
	case 2:
		n := rnd.Intn(5)
		return fmt.Sprintf("cas %s 0 0 %d %s%s\r\n%s\r\n", key(), n, num(), nr, value(n))
	case 3, 4, 5:
		var ks []string
		for i := rnd.Intn(6); i >= 0; i-- {
			ks = append(ks, key())
		}
		return []string{"get", "gets"}[rnd.Intn(2)] + " " + strings.Join(ks, " ") + "\r\n"
	case 6:
		return fmt.Sprintf("%s %s %s %s\r\n", []string{"gat", "gats"}[rnd.Intn(2)], num(), key(), key())
	case 7:
		return fmt.Sprintf("%s %s %s%s\r\n", []string{"incr", "decr"}[rnd.Intn(2)], key(), num(), nr)
	case 8:
		return fmt.Sprintf("touch %s %s%s\r\n", key(), num(), nr)
	case 9:
		return fmt.Sprintf("delete %s%s\r\n", key(), nr)
	case 10:
		return "set n 0 0 2\r\n10\r\n"
	case 11:
		return []string{"bogus\r\n", "\r\n", "get\r\n", "set a 0 0\r\n", "delete\r\n", "incr a\r\n", "touch a\r\n", "verbosity 1\r\n"}[rnd.Intn(8)]
	case 12:
		return "flush_all" + nr + "\r\n"
	default:
		// Odd lengths, none longer than the data: a longer one would make
		// both servers wait for bytes that never come.
		n := []string{"0", "1", "2", "3", "-1", "x", "4294967296", "4294967298"}[rnd.Intn(8)]
		return fmt.Sprintf("set %s 0 0 %s\r\n%s\r\n", key(), n, value(3))
	}
}

// TestRandomStreamsMatchMemcached sends random command streams to a real
// memcached and through the proxy (three backends) and compares the replies
// byte for byte, cas uniques aside. A failure prints the seed and the
// stream; add it to differentialCases.
func TestRandomStreamsMatchMemcached(t *testing.T) {
	matchRandomStreams(t, 1000, 25, randomCommand, maskCas)
}
