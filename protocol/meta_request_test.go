package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// metaTranscript parses input and describes each command compactly:
// "<op> key=<decoded> tok=<key token> [q] [v] O=<opaque> ... data=<block>"
// or the error line, so the tests below read as a transcript.
func metaTranscript(t *testing.T, input string, maxItem int) []string {
	t.Helper()
	rr := NewRequestReader(strings.NewReader(input), maxItem)
	var out []string
	var req Request
	for i := 0; i < 1000; i++ {
		err := rr.Next(&req)
		var re *ReplyError
		if errors.As(err, &re) {
			out = append(out, re.Line)
			if re == ErrLineTooLong {
				return out
			}
			continue
		}
		if err != nil {
			if err != io.EOF {
				t.Fatalf("unexpected error %v", err)
			}
			return out
		}
		s := req.Op.String()
		if m := req.Meta; m != nil {
			if len(req.Keys) > 0 {
				s += fmt.Sprintf(" key=%q", req.Key())
				if m.Base64 {
					s += fmt.Sprintf(" tok=%s", m.KeyToken)
				}
			}
			if m.Quiet {
				s += " q"
			}
			if m.Value {
				s += " v"
			}
			for _, c := range []byte("OkMTNRFCDJ") {
				if tok, ok := m.Flags.Token(c); ok {
					s += fmt.Sprintf(" %c=%s", c, tok)
				}
			}
			if req.Op == OpMetaSet || req.Op == OpMetaArithmetic {
				s += fmt.Sprintf(" [exp=%d flags=%d cas=%d delta=%d init=%d mode=%q viv=%d]", req.Exptime, req.Flags, req.Cas, req.Delta, m.Initial, m.Mode, m.Vivify)
			}
		} else if len(req.Keys) > 0 {
			s += " " + string(bytes.Join(req.Keys, []byte(",")))
		}
		if req.Op.HasData() {
			data := make([]byte, req.Bytes+2)
			if err := rr.ReadData(data); err != nil {
				out = append(out, s+" => "+err.Error())
				if err != ErrBadDataChunk {
					return out
				}
				continue
			}
			s += " data=" + string(data[:req.Bytes])
		}
		out = append(out, s)
	}
	t.Fatal("no progress")
	return nil
}

func TestMetaRequests(t *testing.T) {
	k250, k251 := strings.Repeat("k", 250), strings.Repeat("k", 251)
	b64Long := strings.Repeat("A", 248) // 186 zero bytes
	cases := []struct {
		in   string
		want []string
	}{
		// the brief's example: the data block is data, never a command
		{"ms foo 9\r\nflush_all\r\nmn\r\n", []string{`ms key="foo" [exp=0 flags=0 cas=0 delta=0 init=0 mode='\x00' viv=0] data=flush_all`, "mn"}},
		{"mg foo v k q O123 t c\r\n", []string{`mg key="foo" q v O=123 k=`}},
		{"  mg   foo   v  \r\n", []string{`mg key="foo" v`}},
		{"mg\r\nms\r\nmd\r\nma\r\nmx foo\r\nmgg foo\r\nMG foo\r\n", []string{"ERROR", "ERROR", "ERROR", "ERROR", "ERROR", "ERROR", "ERROR"}},
		{"mn foo bar q\r\nme\r\nme foo\r\nme Zm9v b\r\nme Zm9 b\r\nme foo bx\r\n", []string{"mn", "CLIENT_ERROR bad command line format",
			`me key="foo"`, `me key="foo" tok=Zm9v`, "CLIENT_ERROR bad command line format", `me key="foo"`}},
		// keys: the length is of the token as sent; base64 as memcached decodes it
		{"mg " + k250 + "\r\nmg " + k251 + " v\r\nmd " + k251 + "\r\nma " + k251 + "\r\n", []string{`mg key="` + k250 + `"`,
			"CLIENT_ERROR bad command line format", "CLIENT_ERROR bad command line format", "CLIENT_ERROR bad command line format"}},
		{"mg Zm9v b k\r\nmg Zm9v! b\r\nmg Zg==Zm9v b\r\nmg Zm9 b\r\nmg Z=== b\r\nmg " + b64Long + " b\r\n", []string{
			`mg key="foo" tok=Zm9v k=`, `mg key="foo" tok=Zm9v!`, `mg key="f" tok=Zg==Zm9v`, "CLIENT_ERROR error decoding key",
			"CLIENT_ERROR error decoding key", fmt.Sprintf("mg key=%q tok=%s", make([]byte, 186), b64Long)}},
		{"mg a\tb v\r\n", []string{"CLIENT_ERROR bad command line format"}}, // mcproxy refuses control characters in keys
		// flag errors, in memcached's order and words
		{"mg foo v v\r\nmg foo \xc3\xa9\r\nmg foo \x01\r\nmg foo S1\r\nmg foo E5\r\nmg foo 1\r\n", []string{"CLIENT_ERROR duplicate flag",
			"CLIENT_ERROR duplicate flag", "CLIENT_ERROR invalid flag", "CLIENT_ERROR invalid flag", "CLIENT_ERROR invalid flag", "CLIENT_ERROR invalid flag"}},
		{"mg foo Tx\r\nmg foo N\r\nmg foo R1x\r\nmg foo Cx\r\nmg foo Fx\r\nmg foo M\r\nmg foo MSS\r\nmg foo MS\r\n", []string{
			"CLIENT_ERROR bad token in command line format", "CLIENT_ERROR bad token in command line format",
			"CLIENT_ERROR bad token in command line format", "CLIENT_ERROR bad token in command line format",
			"CLIENT_ERROR bad command line format", "CLIENT_ERROR incorrect length for M token",
			"CLIENT_ERROR incorrect length for M token", `mg key="foo" M=S`}},
		{"mg foo Dx Jy\r\nmg foo Jy Dx\r\nmg foo Jy S\r\nmg foo Tx v v\r\n", []string{"CLIENT_ERROR invalid numeric initial value",
			"CLIENT_ERROR invalid numeric delta value", "CLIENT_ERROR invalid flag", "CLIENT_ERROR duplicate flag"}},
		{"md foo Fy\r\nmd foo Cx\r\nma foo Dx\r\nma foo v v\r\nma foo MX\r\nma foo M+ D7 J9 N0 v\r\n", []string{
			"CLIENT_ERROR invalid or duplicate flag", "CLIENT_ERROR invalid or duplicate flag", "CLIENT_ERROR invalid or duplicate flag",
			"CLIENT_ERROR invalid or duplicate flag", "CLIENT_ERROR invalid mode for ma M token",
			`ma key="foo" v M=+ N=0 D=7 J=9 [exp=0 flags=0 cas=0 delta=7 init=9 mode='+' viv=0]`}},
		{"ma foo\r\n", []string{`ma key="foo" [exp=0 flags=0 cas=0 delta=1 init=0 mode='\x00' viv=0]`}},
		// the opaque: 32 bytes with its O
		{"mg foo O" + strings.Repeat("o", 31) + "\r\nmg foo O" + strings.Repeat("o", 32) + "\r\nmd foo O" + strings.Repeat("o", 32) + "\r\n", []string{
			`mg key="foo" O=` + strings.Repeat("o", 31), "CLIENT_ERROR opaque token too long", "CLIENT_ERROR opaque token too long"}},
		// how many tokens: 19 at most
		{"mg foo c f h k l s t u v O1 P L q T1 N1 R1 I\r\nmg foo c f h k l s t u v O1 P L q T1 N1 R1 I C1\r\n", []string{
			`mg key="foo" q v O=1 k= T=1 N=1 R=1`, "CLIENT_ERROR options flags are too long"}},
		{"md foo c f h k l s t u v O1 P L q T1 N1 R1 I C1\r\n", []string{"CLIENT_ERROR options flags too long"}},
		// ms: refused before its length is read, the block runs as a command
		{"ms foo\r\nmn\r\n", []string{"CLIENT_ERROR bad command line format", "mn"}},
		{"ms foo x\r\nmn\r\n", []string{"CLIENT_ERROR bad command line format", "mn"}},
		{"ms foo -1\r\nmn\r\n", []string{"CLIENT_ERROR bad command line format", "mn"}},
		{"ms " + k251 + " 2\r\nmn\r\n", []string{"CLIENT_ERROR bad command line format", "mn"}},
		{"ms foo 2 c f h k l s t u v O1 P L q T1 N1 R1 I\r\nmn\r\n", []string{"CLIENT_ERROR options flags too long", "mn"}},
		// ms: refused after, the block is swallowed
		{"ms foo 2 S2\r\nmn\r\nmn\r\n", []string{"CLIENT_ERROR invalid flag", "mn"}},
		{"ms foo 2 Tx\r\nab\r\nmn\r\n", []string{"CLIENT_ERROR bad token in command line format", "mn"}},
		{"ms foo 2 MX\r\nab\r\nmn\r\n", []string{"CLIENT_ERROR invalid mode for ms M token", "mn"}},
		{"ms foo 2 MQ O" + strings.Repeat("o", 40) + "\r\nab\r\nmn\r\n", []string{"CLIENT_ERROR invalid mode for ms M token", "mn"}},
		{"ms foo 2 O" + strings.Repeat("o", 40) + "\r\nab\r\nmn\r\n", []string{"CLIENT_ERROR opaque token too long", "mn"}},
		{"ms Zm9 2 b\r\nab\r\nmn\r\n", []string{"CLIENT_ERROR error decoding key", "mn"}},
		{"ms a\tb 2\r\nab\r\nmn\r\n", []string{"CLIENT_ERROR bad command line format", "mn"}},
		{"ms foo 100 T5\r\n" + strings.Repeat("x", 100) + "\r\nmn\r\n", []string{"SERVER_ERROR object too large for cache", "mn"}},
		// ms: the block read like set's
		{"ms foo 2 q T-1 F7 C9 MA I b\r\nab\r\n", []string{"CLIENT_ERROR error decoding key"}},
		{"ms foo 2 q T-1 F7 C9 MA I k\r\nab\r\n", []string{`ms key="foo" q k= M=A T=-1 F=7 C=9 [exp=-1 flags=7 cas=9 delta=0 init=0 mode='A' viv=0] data=ab`}},
		{"ms foo 2\r\nabc\r\nmn\r\n", []string{`ms key="foo" [exp=0 flags=0 cas=0 delta=0 init=0 mode='\x00' viv=0] => CLIENT_ERROR bad data chunk`, "ERROR", "mn"}},
		{"ms foo 0\r\n\r\n", []string{`ms key="foo" [exp=0 flags=0 cas=0 delta=0 init=0 mode='\x00' viv=0] data=`}},
		// a NUL ends the line, as in memcached
		{"mg foo v\x00 k\r\n", []string{`mg key="foo" v`}},
		// a meta line is bounded; the connection then closes
		{"mg foo v L" + strings.Repeat("p", MaxMetaLineLength) + "\r\nmn\r\n", []string{"CLIENT_ERROR line too long"}},
		{"mg foo v L" + strings.Repeat("p", MaxMetaLineLength-len("mg foo v L")) + "\r\nmn\r\n", []string{`mg key="foo" v`, "mn"}},
	}
	for _, c := range cases {
		got := metaTranscript(t, c.in, 64)
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("input %.100q:\ngot  %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestMetaTextUnchanged checks that a text command next to meta commands
// parses as before, and that DiscardData skips a block unread.
func TestMetaTextUnchanged(t *testing.T) {
	in := "ms foo 5\r\nhello\r\nget foo\r\nms bar 3 T0\r\nset\r\nset x 0 0 1\r\nx\r\nmn\r\n"
	got := commandNames(t, NewRequestReader(strings.NewReader(in), 0), true)
	if want := "ms get ms set mn"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestMetaRewrite checks the lines the proxy forwards.
func TestMetaRewrite(t *testing.T) {
	cases := []struct {
		in   string
		rw   MetaRewrite
		want string
	}{
		{"mg  foo  v q O1 k\r\n", MetaRewrite{}, "mg foo v q O1 k\r\n"},
		{"mg foo v q O1 k\r\n", MetaRewrite{Loud: true}, "mg foo v O1 k\r\n"},
		{"mg foo v q O1 k\r\n", MetaRewrite{Loud: true, SetOpaque: true, Opaque: []byte("77")}, "mg foo v O77 k\r\n"},
		{"mg foo v q\r\n", MetaRewrite{SetOpaque: true, Opaque: []byte("77")}, "mg foo v q O77\r\n"},
		{"ms Zm9v +3 b T0 q\r\nabc\r\n", MetaRewrite{Loud: true}, "ms Zm9v 3 b T0\r\n"},
		{"me Zm9v b junk\r\n", MetaRewrite{}, "me Zm9v b\r\n"},
		{"mn junk\r\n", MetaRewrite{}, "mn\r\n"},
	}
	for _, c := range cases {
		rr := NewRequestReader(strings.NewReader(c.in), 0)
		var req Request
		if err := rr.Next(&req); err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if got := string(AppendMetaCommand(nil, &req, c.rw)); got != c.want {
			t.Errorf("%q %+v: got %q want %q", c.in, c.rw, got, c.want)
		}
	}
}

func TestMetaQuietHides(t *testing.T) {
	hidden := map[Op]string{OpMetaGet: "EN", OpMetaSet: "HD", OpMetaDelete: "HD", OpMetaArithmetic: "VA HD"}
	for op := OpMetaGet; op <= OpMetaDebug; op++ {
		var got []string
		for c := MetaVA; c < numMetaCodes; c++ {
			if MetaQuietHides(op, c) {
				got = append(got, c.String())
			}
		}
		if strings.Join(got, " ") != hidden[op] {
			t.Errorf("%v hides %q, want %q", op, got, hidden[op])
		}
	}
}
