package protocol_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/protocol"
)

// The meta parsers held to a real memcached (1.6.18 here): the request
// parser refuses exactly the meta lines memcached refuses, with its words,
// and stays in step with it (data blocks swallowed exactly when memcached
// swallows them); the reply parser frames memcached's real meta replies,
// and CheckMeta accepts them as answers to what was sent.

func TestMetaRequestVerdictsMatchMemcached(t *testing.T) {
	mc := startMemcached(t)
	k250, k251 := strings.Repeat("k", 250), strings.Repeat("k", 251)
	o31, o32 := "O"+strings.Repeat("o", 31), "O"+strings.Repeat("o", 32)
	cases := []string{
		// the brief's example and its neighbours
		"ms foo 9\r\nflush_all\r\n", "ms foo 9 q\r\nflush_all\r\n", "ms foo 9 S9\r\nflush_all\r\n", "ms foo x\r\nflush_all\r\n",
		// command names
		"mg\r\n", "ms\r\n", "md\r\n", "ma\r\n", "mn\r\n", "me\r\n", "mx foo\r\n", "mgg foo\r\n", "m\r\n", "mn foo bar\r\n",
		"  mg foo v\r\n", "mg  foo   v  \r\n", "mg foo v\n",
		// keys
		"mg " + k250 + " v\r\n", "mg " + k251 + " v\r\n", "ms " + k251 + " 2\r\nab\r\n", "md " + k251 + "\r\n", "ma " + k251 + "\r\n",
		"me " + k251 + "\r\n", "mg Zm9v b k v\r\n", "mg Zm9 b\r\n", "mg Zm9v! b\r\n", "mg Z=== b\r\n", "mg Zg==Zm9v b k\r\n",
		"mg " + strings.Repeat("A", 248) + " b k\r\n", "ms Zm9 2 b\r\nab\r\n", "md Zm9 b\r\n", "ma Zm9 b\r\n", "me Zm9 b\r\n",
		"me Zm9v b\r\n", "me foo bx\r\n", "mg foo\x00 v\r\n",
		// flags
		"mg foo v v\r\n", "mg foo \xc3\xa9\r\n", "mg foo \x01\r\n", "mg foo S1\r\n", "mg foo E5\r\n", "mg foo x\r\n", "mg foo 1\r\n",
		"mg foo Tx\r\n", "mg foo T\r\n", "mg foo N1x\r\n", "mg foo R\r\n", "mg foo Cx\r\n", "mg foo C-1\r\n", "mg foo Fx\r\n", "mg foo Fx Tx\r\n", "mg foo Tx Fx\r\n",
		"mg foo F-1\r\n", "mg foo F4294967296\r\n", "mg foo M\r\n", "mg foo MSS\r\n", "mg foo MS\r\n", "mg foo Dx Jy\r\n",
		"mg foo Jy Dx\r\n", "mg foo Jy S\r\n", "mg foo Tx v v\r\n", "mg foo T5\tx v\r\n", "mg foo v\tx\r\n",
		"mg foo k v c f h l s t u O1 P L\r\n", "mg foo " + o31 + "\r\n", "mg foo " + o32 + "\r\n", "mg foo O\r\n",
		"md foo Fy\r\n", "md foo Cx\r\n", "md foo v v\r\n", "md foo S\r\n", "md foo " + o32 + "\r\n", "md foo q I T30\r\n",
		"ma foo Dx\r\n", "ma foo Jx\r\n", "ma foo MX\r\n", "ma foo MXX\r\n", "ma foo M+ N0 J5 v\r\n", "ma foo MD\r\n",
		// token counts
		"mg foo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\r\n", "mg foo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n",
		"mg foo c f h k l s t u v O1 P L q T1 N1 R1 I\r\n", "mg foo c f h k l s t u v O1 P L q T1 N1 R1 I C1\r\n",
		"md foo c f h k l s t u v O1 P L q T1 N1 R1 I C1\r\n", "ma foo c f h k l s t u v O1 P L q T1 N1 R1 I C1\r\n",
		"ms foo 2 c f h k l s t u v O1 P L q T1 N1 R1 I\r\nab\r\n", "ms foo 2 c f h k l s t u v O1 P L q T1 N1 R1\r\nab\r\n",
		"mg foo " + strings.Repeat("v ", 30) + "\r\n",
		// ms
		"ms foo\r\nab\r\n", "ms foo -1\r\nab\r\n", "ms foo 2147483646\r\n", "ms foo +2\r\nab\r\n",
		"ms foo 2 q\r\nabc\r\n", "ms foo 2\r\nabc\r\n", "ms foo 2\r\na\r\n\r\n", "ms foo 0\r\n\r\n", "ms foo 2 q q\r\nab\r\n",
		"ms foo 2 MX\r\nab\r\n", "ms foo 2 Fx MQ\r\nab\r\n", "ms foo 2 MQ " + o32 + "\r\nab\r\n", "ms foo 2 " + o32 + "\r\nab\r\n",
		"ms foo 2 Tx Fy\r\nab\r\n", "ms foo 2 ME\r\nab\r\n", "ms foo 2 MA C1 I\r\nab\r\n", "ms foo 2 T-1 F7 k c O9 b\r\nab\r\n",
		"ms big 2000000 T0\r\n" + strings.Repeat("v", 2000002), "ms big 2000000 q\r\n" + strings.Repeat("v", 2000002),
		"ms big 2000000 Tx\r\n" + strings.Repeat("v", 2000002),
	}
	compareErrors(t, mc.Addr, cases)
}

func TestMetaRepliesOfMemcached(t *testing.T) {
	mc := startMemcached(t)
	tricky := "x\r\nEN\r\nVA 1\r\nz\r\nHD\r\n"
	large := strings.Repeat("L", 300000)
	steps := []struct {
		in   string // the client's command, forwarded with q dropped
		want string // the exact reply, or a prefix when it ends in "*"
	}{
		{"mn\r\n", "MN\r\n"},
		{"mg miss v k O1 q\r\n", "EN kmiss O1\r\n"},
		{"ms foo 3 T0 F7 k c O2\r\nbar\r\n", "HD kfoo c*"},
		{"mg foo v k O3 f s t\r\n", "VA 3 kfoo O3 f7 s3 t-1\r\nbar\r\n"},
		{"mg foo k\r\n", "HD kfoo\r\n"},
		{"ms bin " + itoa(len(tricky)) + " q\r\n" + tricky + "\r\n", "HD\r\n"},
		{"mg bin v\r\n", "VA " + itoa(len(tricky)) + "\r\n" + tricky + "\r\n"},
		{"ms Zm9vYg== 2 b k\r\nab\r\n", "HD kZm9vYg== b\r\n"},
		{"mg Zm9vYg== b k v O4\r\n", "VA 2 kZm9vYg== b O4\r\nab\r\n"},
		{"mg foob k v\r\n", "VA 2 kZm9vYg== b\r\nab\r\n"}, // the item's key is binary: echoed base64
		{"mg Zm9vYg==! b k v\r\n", "VA 2 kZm9vYg== b\r\nab\r\n"},
		{"ms foo 1 ME\r\nx\r\n", "NS\r\n"},
		{"ms foo 1 C999999\r\nx\r\n", "EX\r\n"},
		{"ms miss 1 MR O5\r\nx\r\n", "NS O5\r\n"},
		{"md miss q O6 k\r\n", "NF O6 kmiss\r\n"},
		{"md foo C999999\r\n", "EX\r\n"},
		{"md foo I T30\r\n", "HD\r\n"},
		{"mg foo v c\r\n", "VA 3 c*"},
		{"mg foo\r\n", "HD Z X\r\n"},
		{"md foo q\r\n", "HD\r\n"},
		{"ma cnt\r\n", "NF\r\n"},
		{"ma cnt N0 J41 v\r\n", "VA 2\r\n41\r\n"},
		{"ma cnt v O7 k t c\r\n", "VA 2 O7 kcnt t-1 c*"},
		{"ma cnt MD D50 q\r\n", "HD\r\n"},
		{"ma bin\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		{"mg viv N30 v c\r\n", "VA 0 c*"},
		{"ms large 300000\r\n" + large + "\r\n", "HD\r\n"},
		{"mg large v s\r\n", "VA 300000 s300000\r\n" + large + "\r\n"},
		{"ms big 2000000\r\n" + strings.Repeat("B", 2000000) + "\r\n", "SERVER_ERROR object too large for cache\r\n"},
		{"me cnt\r\n", "ME cnt exp=-1 la=*"},
		{"me Zm9vYg== b\r\n", "ME Zm9vYg== exp=*"},
		{"me miss\r\n", "EN\r\n"},
		{"mn\r\n", "MN\r\n"},
	}
	type sent struct {
		exp  protocol.MetaExpect
		op   protocol.Op
		want string
	}
	var all []byte
	var expect []sent
	for _, s := range steps {
		rr := protocol.NewRequestReader(strings.NewReader(s.in), 4<<20)
		var req protocol.Request
		if err := rr.Next(&req); err != nil {
			t.Fatalf("%.40q: %v", s.in, err)
		}
		e := protocol.ExpectMeta(&req)
		e.Opaque, e.Key = bytes.Clone(e.Opaque), bytes.Clone(e.Key)
		all = protocol.AppendMetaCommand(all, &req, protocol.MetaRewrite{Loud: true})
		if req.Op.HasData() {
			data := make([]byte, req.Bytes+2)
			if err := rr.ReadData(data); err != nil {
				t.Fatal(err)
			}
			all = append(all, data...)
		}
		expect = append(expect, sent{exp: e, op: req.Op, want: s.want})
	}
	rr, rec := pipelineTo(t, mc.Addr, all)
	var r protocol.Reply
	var framed []byte
	for i, s := range expect {
		if err := rr.ReadReply(protocol.KindOf(s.op), &r); err != nil {
			t.Fatalf("step %d (%.40q): %v", i, steps[i].in, err)
		}
		framed = append(framed, r.Raw...)
		raw := string(r.Raw)
		if w, prefix := strings.CutSuffix(s.want, "*"); (prefix && !strings.HasPrefix(raw, w)) || (!prefix && raw != s.want) {
			t.Fatalf("step %d (%.40q): reply %.120q, want %.120q", i, steps[i].in, raw, s.want)
		}
		if err := r.CheckMeta(&s.exp); err != nil {
			t.Errorf("step %d (%.40q): %v", i, steps[i].in, err)
		}
		if r.Meta.Code == protocol.MetaVA && !strings.HasSuffix(raw, "\r\n"+string(r.MetaValue())+"\r\n") {
			t.Errorf("step %d: value %.60q", i, r.MetaValue())
		}
	}
	if rr.Buffered() != 0 || !bytes.Equal(framed, rec.got) {
		t.Fatalf("the replies do not cover exactly what memcached sent: %d bytes framed, %d received, %d left",
			len(framed), len(rec.got), rr.Buffered())
	}
}

func itoa(n int) string { return string(protocol.AppendInt32(nil, int32(n))) }

// TestMetaFencedAnswersOfMemcached: memcached answers a fenced request (a
// quiet ma with N sent with its q and an mn, protocol.MetaQuietFenced) as
// ReadReplyTo reads it: the reply it shows and MN when N creates the item
// (memcached 1.6.18), MN alone when an increment is hidden, an error and
// MN; and the bytes read are exactly those memcached sent.
func TestMetaFencedAnswersOfMemcached(t *testing.T) {
	mc := startMemcached(t)
	steps := []struct{ cmd, kept string }{
		{"ma fc N0 J13 q v O1\r\nmn\r\n", "VA 2 O1\r\n13\r\n"},
		{"ma fc N0 J13 q v O2\r\nmn\r\n", "MN\r\n"},
		{"ma fc N0 q O3 MD D1\r\nmn\r\n", "MN\r\n"},
		{"ms ft 1\r\nx\r\n", "HD\r\n"},
		{"ma ft N0 q k O4\r\nmn\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		{"mg fc v\r\n", "VA 2\r\n13\r\n"},
	}
	var all []byte
	for _, s := range steps {
		all = append(all, s.cmd...)
	}
	rr, rec := pipelineTo(t, mc.Addr, all)
	var r protocol.Reply
	var framed []byte
	for i, s := range steps {
		op := protocol.OpMetaArithmetic
		switch s.cmd[:2] {
		case "ms":
			op = protocol.OpMetaSet
		case "mg":
			op = protocol.OpMetaGet
		}
		if err := rr.ReadReplyTo(op, []byte(s.cmd), &r); err != nil {
			t.Fatalf("step %d (%q): %v", i, s.cmd, err)
		}
		if string(r.Raw) != s.kept {
			t.Fatalf("step %d (%q): %q, want %q", i, s.cmd, r.Raw, s.kept)
		}
		framed = append(framed, r.Raw...)
		if s.kept != "MN\r\n" && strings.HasSuffix(s.cmd, "mn\r\n") {
			framed = append(framed, "MN\r\n"...)
		}
	}
	if rr.Buffered() != 0 || !bytes.Equal(framed, rec.got) {
		t.Fatalf("the answers do not cover exactly what memcached sent: %q framed, %q received", framed, rec.got)
	}
}

// pipelineTo writes all to the memcached at addr, pipelined while the
// replies are read, and returns a reader of the replies and the recorder of
// every byte it read.
func pipelineTo(t *testing.T, addr string, all []byte) (*protocol.ReplyReader, *recorder) {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = c.Write(all) }()
	rec := &recorder{r: c}
	return protocol.NewReplyReader(rec, 0), rec
}
