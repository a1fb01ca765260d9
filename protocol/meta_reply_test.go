package protocol

import (
	"fmt"
	"strings"
	"testing"
)

func TestMetaReplyFraming(t *testing.T) {
	cases := []struct {
		in   string
		want string // code, size, flags, value; or "refused"
	}{
		{"HD\r\n", "HD"},
		{"VA 2 t5 c9 O1 kfoo\r\nab\r\n", "VA 2 [t5][c9][O1][kfoo] ab"},
		{"VA 0\r\n\r\n", "VA 0 "},
		{"VA 4 s4\r\nx\r\ny\r\n", "VA 4 [s4] x\r\ny"},
		{"EN kZm9v b\r\n", "EN [kZm9v][b]"},
		{"MN\r\n", "MN"},
		{"ME foo exp=-1 la=0 cas=3\r\n", "ME key=foo"},
		{"CLIENT_ERROR bad data chunk\r\n", "error"},
		{"VA\r\n", "refused"}, {"VA x\r\n", "refused"}, {"VA +1\r\nx\r\n", "refused"}, {"VA 1\r\nxy\r\n", "refused"},
		{"VA 2000\r\n", "refused"}, {"HD \r\n", "refused"}, {"HD  c1\r\n", "refused"}, {"HD c1 c2\r\n", "refused"},
		{"HD 1\r\n", "refused"}, {"HDX\r\n", "refused"}, {"MN O1\r\n", "refused"}, {"ME foo\r\n", "refused"},
		{"ME foo \r\n", "refused"}, {"STORED\r\n", "refused"}, {"END\r\n", "refused"}, {"HD\n", "refused"},
		{"HD " + strings.Repeat("a ", 25) + "\r\n", "refused"}, {"HD O" + strings.Repeat("o", maxMetaReplyLine) + "\r\n", "refused"},
		{"VALUE foo 0 1\r\nx\r\nEND\r\n", "refused"},
	}
	for _, c := range cases {
		var r Reply
		err := NewReplyReader(strings.NewReader(c.in), 1024).ReadReply(ReplyMeta, &r)
		got := "refused"
		switch {
		case err != nil:
		case r.IsError:
			got = "error"
		case r.Meta.Code == MetaME:
			got = fmt.Sprintf("ME key=%s", r.MetaDebugKey())
		default:
			got = r.Meta.Code.String()
			if r.Meta.Code == MetaVA {
				got += fmt.Sprintf(" %d", r.Meta.Size)
			}
			if r.Meta.Flags.Len() > 0 {
				got += " "
			}
			for i := 0; i < r.Meta.Flags.Len(); i++ {
				c, tok := r.Meta.Flags.At(i)
				got += fmt.Sprintf("[%c%s]", c, tok)
			}
			if r.Meta.Code == MetaVA {
				got += " " + string(r.MetaValue())
			}
		}
		if got != c.want {
			t.Errorf("%.60q: got %q want %q (%v)", c.in, got, c.want, err)
		}
	}
}

// TestMetaCheck checks that a reply that does not answer its request is
// refused: the wrong code, a missing or foreign opaque, the wrong key.
func TestMetaCheck(t *testing.T) {
	cases := []struct {
		req, reply string
		ok         bool
	}{
		{"mg foo v O1 k\r\n", "VA 1 O1 kfoo\r\nx\r\n", true},
		{"mg foo v O1 k\r\n", "EN O1 kfoo\r\n", true},
		{"mg foo v O1 k\r\n", "HD O1 kfoo\r\n", false}, // v asked: a hit is VA
		{"mg foo O1 k\r\n", "VA 1 O1 kfoo\r\nx\r\n", false},
		{"mg foo v O1 k\r\n", "VA 1 O2 kfoo\r\nx\r\n", false},
		{"mg foo v O1 k\r\n", "VA 1 kfoo\r\nx\r\n", false},
		{"mg foo v k\r\n", "VA 1 O1 kfoo\r\nx\r\n", false},
		{"mg foo v O1 k\r\n", "VA 1 O1 kbar\r\nx\r\n", false},
		{"mg foo v O1 k\r\n", "VA 1 O1\r\nx\r\n", false},
		{"mg foo v O1\r\n", "VA 1 O1 kfoo\r\nx\r\n", false},
		{"mg foo v k\r\n", "VA 1 kZm9v b\r\nx\r\n", true}, // a binary item's key, echoed base64
		{"mg Zm9v! b v k\r\n", "VA 1 kZm9v b\r\nx\r\n", true},
		{"mg Zm9v b v k\r\n", "VA 1 kZm9w b\r\nx\r\n", false},
		{"mg foo v\r\n", "SERVER_ERROR out of memory\r\n", true},
		{"mg foo v\r\n", "MN\r\n", false},
		{"ms foo 1 O1\r\nx\r\n", "NS O1\r\n", true},
		{"ms foo 1\r\nx\r\n", "EN\r\n", false},
		{"ms foo 1\r\nx\r\n", "VA 1\r\nx\r\n", false},
		{"md foo\r\n", "NS\r\n", false},
		{"md foo\r\n", "NF\r\n", true},
		{"ma foo v\r\n", "VA 1\r\n5\r\n", true},
		{"ma foo\r\n", "VA 1\r\n5\r\n", false},
		{"ma foo\r\n", "EN\r\n", false},
		{"mn\r\n", "MN\r\n", true},
		{"mn\r\n", "HD\r\n", false},
		{"me foo\r\n", "ME Zm9v exp=-1\r\n", true},
		{"me foo\r\n", "HD\r\n", false},
	}
	for _, c := range cases {
		var req Request
		if err := NewRequestReader(strings.NewReader(c.req), 0).Next(&req); err != nil {
			t.Fatalf("%q: %v", c.req, err)
		}
		var r Reply
		if err := NewReplyReader(strings.NewReader(c.reply), 0).ReadReply(ReplyMeta, &r); err != nil {
			t.Fatalf("%q: %v", c.reply, err)
		}
		e := ExpectMeta(&req)
		if err := r.CheckMeta(&e); (err == nil) != c.ok {
			t.Errorf("%q answered by %q: %v, want ok=%v", c.req, c.reply, err, c.ok)
		}
	}
}

func TestMetaClientReply(t *testing.T) {
	cases := []struct {
		reply     string
		hasOpaque bool
		opaque    string
		want      string
	}{
		{"VA 2 t5 Op7 kfoo\r\nab\r\n", true, "c1", "VA 2 t5 Oc1 kfoo\r\nab\r\n"},
		{"VA 2 t5 Op7 kfoo\r\nab\r\n", false, "", "VA 2 t5 kfoo\r\nab\r\n"},
		{"HD Op7\r\n", false, "", "HD\r\n"},
		{"EN\r\n", true, "c1", "EN Oc1\r\n"},
		{"HD Oc1 c5\r\n", true, "c1", "HD Oc1 c5\r\n"},
		{"MN\r\n", true, "c1", "MN\r\n"},
		{"CLIENT_ERROR x\r\n", true, "c1", "CLIENT_ERROR x\r\n"},
	}
	for _, c := range cases {
		var r Reply
		if err := NewReplyReader(strings.NewReader(c.reply), 0).ReadReply(ReplyMeta, &r); err != nil {
			t.Fatalf("%q: %v", c.reply, err)
		}
		if got := string(AppendMetaReply(nil, &r, c.hasOpaque, []byte(c.opaque))); got != c.want {
			t.Errorf("%q with %v/%q: got %q want %q", c.reply, c.hasOpaque, c.opaque, got, c.want)
		}
	}
	for in, want := range map[string]string{
		"mg foo v O1 q t k\r\n": "EN O1 kfoo\r\n", "mg Zm9v! b k\r\n": "EN kZm9v b\r\n", "mg foo v\r\n": "EN\r\n",
	} {
		var req Request
		if err := NewRequestReader(strings.NewReader(in), 0).Next(&req); err != nil {
			t.Fatal(err)
		}
		if got := string(AppendMetaMiss(nil, &req)); got != want {
			t.Errorf("miss of %q: %q want %q", in, got, want)
		}
	}
}

// BenchmarkMetaRequestReader parses a pipelined mix of mg lines (with the
// flags a client like Dalli sends) and ms lines with 100-byte values. One
// op is one command, its data block included.
func BenchmarkMetaRequestReader(b *testing.B) {
	var in []byte
	val := strings.Repeat("v", 100)
	const rounds = 100
	for i := 0; i < rounds; i++ {
		in = fmt.Appendf(in, "mg user:%d v f t q k O%d\r\n", i, i)
		in = fmt.Appendf(in, "ms user:%d %d T3600 F0 q O%d\r\n%s\r\n", i, len(val), i, val)
		in = fmt.Appendf(in, "mg dXNlcjox b v c\r\n")
	}
	const perRound = 3
	benchRequestReader(b, in, rounds*perRound, len(val))
}

// BenchmarkMetaReplyReader parses and checks the replies to that mix: VA
// with flags and a 100-byte value, HD, EN. One op is one reply.
func BenchmarkMetaReplyReader(b *testing.B) {
	val := strings.Repeat("v", 100)
	var in []byte
	const rounds = 100
	for i := 0; i < rounds; i++ {
		in = fmt.Appendf(in, "VA %d f0 t-1 kdXNlcjox b O7\r\n%s\r\n", len(val), val)
		in = append(in, "HD O7\r\n"...)
		in = append(in, "EN kuser:1 O7\r\n"...)
	}
	rr := NewReplyReader(&loopReader{in: in}, 0)
	var r Reply
	get := MetaExpect{Op: OpMetaGet, Value: true, HasOpaque: true, Opaque: []byte("7"), EchoKey: true, Key: []byte("user:1")}
	set := MetaExpect{Op: OpMetaSet, HasOpaque: true, Opaque: []byte("7")}
	b.SetBytes(int64(len(in) / (rounds * 3)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rr.ReadReply(ReplyMeta, &r); err != nil {
			b.Fatal(err)
		}
		e := &get
		if i%3 == 1 {
			e = &set
		}
		if err := r.CheckMeta(e); err != nil {
			b.Fatal(err)
		}
	}
}
