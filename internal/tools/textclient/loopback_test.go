package textclient

import "testing"

func TestResolveLoopback(t *testing.T) {
	ok := map[string]string{
		"127.0.0.1:11211":        "127.0.0.1:11211",
		"127.1.2.3:1":            "127.1.2.3:1",
		"localhost:11211":        "127.0.0.1:11211",
		"LOCALHOST.:11211":       "127.0.0.1:11211",
		"[::1]:11211":            "[::1]:11211",
		"[::ffff:127.0.0.1]:123": "127.0.0.1:123",
	}
	for in, want := range ok {
		got, err := ResolveLoopback(in)
		if err != nil || got != want {
			t.Errorf("ResolveLoopback(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	refused := []string{
		"10.0.0.1:11211",
		"192.168.1.10:11211",
		"0.0.0.0:11211",
		"[::]:11211",
		":11211",
		"example.com:11211",
		"localhost.example.com:11211",
		"8.8.8.8:53",
		"[fe80::1%lo]:11211",
		"128.0.0.1:11211",
		"127.0.0.1",          // no port
		"127.0.0.1:0",        // no port
		"127.0.0.1:99999",    // bad port
		"127.0.0.1:memcache", // named ports are not looked up either
	}
	for _, in := range refused {
		if got, err := ResolveLoopback(in); err == nil {
			t.Errorf("ResolveLoopback(%q) = %q, want an error", in, got)
		}
	}
}
