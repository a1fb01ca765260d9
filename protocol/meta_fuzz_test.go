package protocol

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzMetaRequest feeds client streams rich in meta commands through the
// request parser with every check of FuzzRequestReader (split-independence,
// memcached's errors only, recovery after each line, canonical round trip)
// and, for each meta command accepted, the meta checks: a valid key token
// and its decoding, the flag table, and the rewrites the proxy makes (q
// dropped, an opaque replaced or added) parsing back as intended. Seeds
// live in testdata/fuzz/FuzzMetaRequest.
func FuzzMetaRequest(f *testing.F) {
	for _, s := range []string{
		"mg foo v k O1 t c f s h l u q\r\n", "ms foo 3 T0 F5 C0 I MS b\r\nabc\r\n", "md Zm9v b q I T30\r\n",
		"ma cnt N0 J5 D2 MD v\r\n", "mn\r\nme foo b\r\n", "mg Zg==Zm9v b k\r\n", "ms foo 2 S2\r\nab\r\n",
		"ms foo 100\r\n", "mg foo Tx Dy Jz\r\n", "mg foo O12345678901234567890123456789012\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(fuzzRequests)
}

// checkMetaRequest checks what the proxy relies on in an accepted meta
// command.
func checkMetaRequest(t *testing.T, req *Request) {
	t.Helper()
	m := req.Meta
	if m == nil {
		t.Fatalf("%v without its flags", req.Op)
	}
	if req.Op == OpMetaNoop {
		if len(req.Keys) != 0 || m.Flags.Len() != 0 {
			t.Fatalf("mn with a key or flags: %s", describe(req))
		}
		return
	}
	if len(req.Keys) != 1 || !validKey(m.KeyToken) {
		t.Fatalf("accepted key token %q", m.KeyToken)
	}
	if m.Base64 {
		buf := make([]byte, MaxKeyLength)
		n := decodeBase64Key(buf, m.KeyToken)
		if n == 0 || !bytes.Equal(buf[:n], req.Key()) {
			t.Fatalf("key %q decoded to %q", m.KeyToken, req.Key())
		}
	} else if !bytes.Equal(m.KeyToken, req.Key()) {
		t.Fatalf("key %q became %q", m.KeyToken, req.Key())
	}
	if m.Flags.Len() > MaxMetaTokens-2 {
		t.Fatalf("%d flags", m.Flags.Len())
	}
	seen := map[byte]bool{}
	for i := 0; i < m.Flags.Len(); i++ {
		c, tok := m.Flags.At(i)
		if _, ok := letterBit(c); !ok || seen[c] || !m.Flags.Has(c) {
			t.Fatalf("flag %q in %s", c, describeMeta(m))
		}
		seen[c] = true
		if got, _ := m.Flags.Token(c); !bytes.Equal(got, tok) || bytes.IndexByte(tok, ' ') >= 0 {
			t.Fatalf("flag %q token %q / %q", c, tok, got)
		}
	}
	if req.Op == OpMetaDebug {
		return
	}
	if m.Quiet != m.Flags.Has('q') || m.Value != m.Flags.Has('v') || m.Base64 != m.Flags.Has('b') {
		t.Fatalf("flag fields disagree with the flags: %s", describeMeta(m))
	}
	if o, ok := m.Flags.Token('O'); ok && (len(o)+1 > MaxMetaOpaqueToken || !bytes.Equal(o, m.Opaque)) {
		t.Fatalf("opaque %q", o)
	}
}

// textFields describes req without its meta flags.
func textFields(req *Request) string {
	return strings.TrimSuffix(describe(req), describeMeta(req.Meta))
}

// flagsExcept lists m's flags in order, leaving out the letters in skip.
func flagsExcept(m *MetaRequest, skip string) string {
	var s string
	for i := 0; i < m.Flags.Len(); i++ {
		if c, tok := m.Flags.At(i); strings.IndexByte(skip, c) < 0 {
			s += fmt.Sprintf("[%c%q]", c, tok)
		}
	}
	return s
}

func describeMeta(m *MetaRequest) string {
	if m == nil {
		return ""
	}
	s := fmt.Sprintf(" meta key=%q b=%v q=%v v=%v opaque=%q mode=%q viv=%d rec=%d init=%d flags=",
		m.KeyToken, m.Base64, m.Quiet, m.Value, m.Opaque, m.Mode, m.Vivify, m.Recache, m.Initial)
	for i := 0; i < m.Flags.Len(); i++ {
		c, tok := m.Flags.At(i)
		s += fmt.Sprintf("[%c%q]", c, tok)
	}
	return s
}

// lineTokens counts the space-separated tokens of a command line, as
// memcached's tokenizer does (a CR or NUL inside a token is part of it).
func lineTokens(line []byte) int {
	return len(bytes.FieldsFunc(bytes.TrimSuffix(line, crlf), func(r rune) bool { return r == ' ' }))
}

// checkMetaRewrites encodes req with each rewrite the proxy makes and
// checks the line parses back to req so changed, and that a miss built for
// req answers it.
func checkMetaRewrites(t *testing.T, req *Request) {
	t.Helper()
	if req.Op == OpMetaNoop || req.Op == OpMetaDebug {
		return
	}
	exp := ExpectMeta(req)
	exp.Opaque, exp.Key = bytes.Clone(exp.Opaque), bytes.Clone(exp.Key)
	for _, rw := range []MetaRewrite{{Loud: true}, {SetOpaque: true, Opaque: []byte("p42")}, {Loud: true, SetOpaque: true}} {
		line := AppendMetaCommand(nil, req, rw)
		if n := lineTokens(line); n != MetaTokens(req, rw) {
			t.Fatalf("rewritten line %q has %d tokens, MetaTokens says %d", line, n, MetaTokens(req, rw))
		}
		if MetaTokens(req, rw) > MaxMetaTokens {
			continue // the proxy does not send it (memcached would refuse it)
		}
		stream := line
		if req.Op == OpMetaSet {
			stream = append(append(bytes.Clone(line), bytes.Repeat([]byte("v"), req.Bytes)...), crlf...)
		}
		rr := NewRequestReader(bytes.NewReader(stream), fuzzMaxItem)
		var again Request
		if err := rr.Next(&again); err != nil {
			t.Fatalf("rewritten line %q (%+v) does not parse: %v", line, rw, err)
		}
		if a, b := textFields(req), textFields(&again); a != b {
			t.Fatalf("rewrite %+v changed the command:\n%s\n%s", rw, a, b)
		}
		skip := ""
		if rw.Loud {
			skip += "q"
			if again.Meta.Quiet {
				t.Fatalf("%q is still quiet", line)
			}
		}
		if rw.SetOpaque {
			skip += "O"
			if o, ok := again.Meta.Flags.Token('O'); !ok || !bytes.Equal(o, rw.Opaque) {
				t.Fatalf("%q has opaque %q, want %q", line, o, rw.Opaque)
			}
		}
		if a, b := flagsExcept(req.Meta, skip), flagsExcept(again.Meta, skip); a != b {
			t.Fatalf("rewrite %+v of %q changed other flags: %s then %s", rw, canonicalLine(req), a, b)
		}
		// What the backend connection checks the reply against, read back
		// from the line it sent, is what the line asks for.
		var keyBuf [MaxKeyLength]byte
		if a, b := fmt.Sprintf("%+v", expectOfLine(req.Op, stream, keyBuf[:])), fmt.Sprintf("%+v", ExpectMeta(&again)); a != b {
			t.Fatalf("expectations of %q: from the line %s, from the request %s", line, a, b)
		}
	}
	// The failover cap (T and N rewritten in place, T added to an ms
	// without one, as the proxy does on a stand-in) changes only those.
	hasT := req.Meta.Flags.Has('T')
	if rw := (MetaRewrite{SetTTL: hasT || req.Op == OpMetaSet, TTL: 61, SetVivify: true, Vivify: 62}); (hasT || req.Meta.Flags.Has('N') || req.Op == OpMetaSet) && MetaTokens(req, rw) <= MaxMetaTokens {
		line := AppendMetaCommand(nil, req, rw)
		if n := lineTokens(line); n != MetaTokens(req, rw) {
			t.Fatalf("capped line %q has %d tokens, MetaTokens says %d", line, n, MetaTokens(req, rw))
		}
		stream := line
		if req.Op == OpMetaSet {
			stream = append(append(bytes.Clone(line), bytes.Repeat([]byte("v"), req.Bytes)...), crlf...)
		}
		var again Request
		if err := NewRequestReader(bytes.NewReader(stream), fuzzMaxItem).Next(&again); err != nil {
			t.Fatalf("capped line %q does not parse: %v", line, err)
		}
		if rw.SetTTL && again.Exptime != 61 || req.Meta.Flags.Has('N') && again.Meta.Vivify != 62 {
			t.Fatalf("capped line %q: T %d N %d", line, again.Exptime, again.Meta.Vivify)
		}
		if a, b := flagsExcept(req.Meta, "TN"), flagsExcept(again.Meta, "TN"); a != b {
			t.Fatalf("cap of %q changed other flags: %s then %s", canonicalLine(req), a, b)
		}
	}
	// The miss the proxy makes for a failed backend is one memcached could
	// have sent.
	if req.Op == OpMetaGet {
		miss := AppendMetaMiss(nil, req)
		var r Reply
		if err := NewReplyReader(bytes.NewReader(miss), 0).ReadReply(ReplyMeta, &r); err != nil {
			t.Fatalf("miss %q does not parse: %v", miss, err)
		}
		if err := r.CheckMeta(&exp); err != nil {
			t.Fatalf("miss %q does not answer %q: %v", miss, canonicalLine(req), err)
		}
	}
}

// FuzzMetaReply feeds arbitrary backend bytes to the meta reply parser. It
// must not panic, must hold no more than its bounds, must give the same
// result however the bytes are split into reads, and must accept exactly
// what a strict, separately written reading of memcached's meta reply
// grammar accepts, ending each reply at the same byte. Each reply it
// accepts must survive AppendMetaReply's opaque rewrite. Seeds live in
// testdata/fuzz/FuzzMetaReply.
func FuzzMetaReply(f *testing.F) {
	for _, s := range []string{
		"VA 2 t5 c9 f0 s2 h0 l0 O1 kfoo\r\nab\r\nHD\r\nEN\r\n", "VA 3 kZm9v b O123\r\nbar\r\nNS\r\nEX c0\r\nNF Oxy k\r\n",
		"MN\r\nME Zm9v exp=-1 la=0 cas=3 fetch=yes cls=1 size=65\r\n", "VA 2 Z X\r\nab\r\nHD W\r\n",
		"CLIENT_ERROR bad data chunk\r\nSERVER_ERROR out of memory\r\nERROR\r\n", "VA 1\r\n5\r\nHD O1 O2\r\nVA 9999\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxValue = 1024
		a := readThreeWays(t, in, func(rd io.Reader) []string { return metaReplyTranscript(t, rd, maxValue) })
		if b := strings.Join(refMetaReplyTranscript(in, maxValue), "\n"); a != b {
			t.Fatalf("reader and memcached's grammar disagree:\nreader  %q\ngrammar %q", a, b)
		}
		// The same bytes as the answers to fenced requests.
		a = readThreeWays(t, in, func(rd io.Reader) []string { return fencedReplyTranscript(rd, maxValue) })
		if b := strings.Join(refFencedTranscript(in, maxValue), "\n"); a != b {
			t.Fatalf("reader and the fenced grammar disagree:\nreader  %q\ngrammar %q", a, b)
		}
	})
}

// fencedCommand is the fenced request whose answers fencedReplyTranscript
// reads: an ma with q, v and the opaque 1, and the mn after it.
const fencedCommand = "ma n q v O1\r\nmn\r\n"

// fencedReplyTranscript reads the replies to fencedCommand repeated, as
// the backend connection does.
func fencedReplyTranscript(rd io.Reader, maxValue int) []string {
	rr := NewReplyReader(rd, maxValue)
	var r Reply
	var out []string
	for i := 0; i < 10000; i++ {
		err := retry(func() error { return rr.ReadReplyTo(OpMetaArithmetic, []byte(fencedCommand), &r) })
		if err != nil {
			if err == io.EOF && len(r.Raw) == 0 && rr.Buffered() == 0 {
				return append(out, "clean end")
			}
			return append(out, "refused")
		}
		out = append(out, fmt.Sprintf("reply %q error=%v", r.Raw, r.IsError))
	}
	return append(out, "no end")
}

// refFencedTranscript is fencedReplyTranscript for the grammar of the
// answers to a fenced request, written apart from the reader:
//
//	answer = "MN" CRLF | reply "MN" CRLF
//
// where reply is refMetaReply's, an error or a reply that answers
// fencedCommand: VA, NF, NS or EX (no HD: v was sent), O1 echoed, no k.
func refFencedTranscript(in []byte, maxValue int) []string {
	var out []string
	for len(in) > 0 && len(out) < 10000 {
		n, isErr, ok := refMetaReply(in, maxValue)
		if !ok {
			return append(out, "refused")
		}
		reply := in[:n]
		out = append(out, fmt.Sprintf("reply %q error=%v", reply, isErr))
		in = in[n:]
		if string(reply) == "MN\r\n" {
			continue // hidden
		}
		if !isErr {
			line := string(reply[:bytes.IndexByte(reply, '\n')-1]) // without its CRLF
			f := strings.Split(line, " ")
			flags := f[1:]
			if f[0] == "VA" {
				flags = f[2:]
			}
			answers := false
			switch f[0] {
			case "VA", "NF", "NS", "EX":
				answers = slices.Contains(flags, "O1") && !slices.ContainsFunc(flags, func(s string) bool {
					return s[0] == 'k' || s[0] == 'O' && s != "O1"
				})
			}
			if !answers {
				return append(out[:len(out)-1], "refused")
			}
		}
		if !bytes.HasPrefix(in, []byte("MN\r\n")) {
			return append(out[:len(out)-1], "refused")
		}
		in = in[4:]
	}
	if len(out) >= 10000 {
		return append(out, "no end")
	}
	return append(out, "clean end")
}

// metaReplyTranscript is replyTranscript for meta replies, each checked
// by checkMetaReplyRewrite.
func metaReplyTranscript(t *testing.T, rd io.Reader, maxValue int) []string {
	t.Helper()
	return replyTranscript(t, ReplyMeta, rd, maxValue, func(r *Reply) string {
		s := fmt.Sprintf("reply %q error=%v", r.Raw, r.IsError)
		checkMetaReplyRewrite(t, r, maxValue)
		return s
	})
}

// checkMetaReplyRewrite checks the parsed form of r against its bytes and
// that AppendMetaReply changes only the opaque.
func checkMetaReplyRewrite(t *testing.T, r *Reply, maxValue int) {
	t.Helper()
	if r.IsError {
		if r.Meta.Code != MetaNone {
			t.Fatalf("error %q with code %v", r.Raw, r.Meta.Code)
		}
		return
	}
	if r.Meta.Code == MetaVA && (len(r.MetaValue()) != r.Meta.Size || r.Meta.HeaderEnd+r.Meta.Size+2 != len(r.Raw)) {
		t.Fatalf("VA of %d bytes framed as %d in %q", r.Meta.Size, len(r.MetaValue()), r.Raw)
	}
	if r.Meta.Code != MetaVA && r.Meta.HeaderEnd != len(r.Raw) {
		t.Fatalf("%v reply %q framed with a body", r.Meta.Code, r.Raw)
	}
	if got := AppendMetaReply(nil, r, r.Meta.Flags.Has('O'), func() []byte { o, _ := r.Meta.Flags.Token('O'); return o }()); !bytes.Equal(got, r.Raw) {
		t.Fatalf("unchanged opaque rewrote %q to %q", r.Raw, got)
	}
	if r.Meta.Code == MetaMN || r.Meta.Code == MetaME {
		return
	}
	for _, o := range []struct {
		has bool
		val string
	}{{false, ""}, {true, "client9"}} {
		line := AppendMetaReply(nil, r, o.has, []byte(o.val))
		var again Reply
		if err := NewReplyReader(bytes.NewReader(line), maxValue).ReadReply(ReplyMeta, &again); err != nil {
			t.Fatalf("rewritten reply %q: %v", line, err)
		}
		tok, has := again.Meta.Flags.Token('O')
		if has != o.has || string(tok) != o.val || again.Meta.Code != r.Meta.Code ||
			!bytes.Equal(again.MetaValue(), r.MetaValue()) || again.Meta.Flags.Len() > r.Meta.Flags.Len()+1 {
			t.Fatalf("rewrite of %q to opaque %v/%q gave %q", r.Raw, o.has, o.val, line)
		}
	}
}

// refMetaReplyTranscript is metaReplyTranscript for the reference grammar.
func refMetaReplyTranscript(in []byte, maxValue int) []string {
	var out []string
	for len(in) > 0 && len(out) < 10000 {
		n, isErr, ok := refMetaReply(in, maxValue)
		if !ok {
			return append(out, "refused")
		}
		out = append(out, fmt.Sprintf("reply %q error=%v", in[:n], isErr))
		in = in[n:]
	}
	return append(out, "clean end")
}

// refMetaReply is memcached's meta reply grammar, written plainly and apart
// from the reader:
//
//	reply = error | status CRLF | "VA " size flags CRLF data CRLF     (len(data) = size <= maxValue)
//	status = ("HD" | "EN" | "NS" | "EX" | "NF") flags | "MN" | "ME " key " " text
//	flags = (" " letter token)*   at most 24, no letter twice
//
// A status line is at most maxMetaReplyLine bytes with its CRLF; an error
// line at most maxReplyLine.
func refMetaReply(in []byte, maxValue int) (n int, isErr, ok bool) {
	i := bytes.IndexByte(in, '\n')
	if i < 0 || i+1 > maxReplyLine || i == 0 || in[i-1] != '\r' {
		return 0, false, false
	}
	n = i + 1
	line := string(in[:i-1])
	if line == "ERROR" || strings.HasPrefix(line, "ERROR ") ||
		strings.HasPrefix(line, "CLIENT_ERROR ") || strings.HasPrefix(line, "SERVER_ERROR ") {
		return n, true, true
	}
	if n > maxMetaReplyLine {
		return 0, false, false
	}
	f := strings.Split(line, " ")
	isLetter := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	flagsOK := func(fl []string) bool {
		if len(fl) > 24 {
			return false
		}
		seen := map[byte]bool{}
		for _, s := range fl {
			if s == "" || !isLetter(s[0]) || seen[s[0]] {
				return false
			}
			seen[s[0]] = true
		}
		return true
	}
	switch f[0] {
	case "HD", "EN", "NS", "EX", "NF":
		return n, false, flagsOK(f[1:])
	case "MN":
		return n, false, len(f) == 1
	case "ME":
		p := strings.SplitN(line, " ", 3)
		if len(p) != 3 || p[2] == "" || len(p[1]) == 0 || len(p[1]) > 250 ||
			strings.ContainsFunc(p[1], func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return 0, false, false
		}
		return n, false, true
	case "VA":
		if len(f) < 2 || !flagsOK(f[2:]) {
			return 0, false, false
		}
		size, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || f[1][0] == '+' || size > uint64(maxValue) {
			return 0, false, false
		}
		end := n + int(size) + 2
		if end > len(in) || in[end-2] != '\r' || in[end-1] != '\n' {
			return 0, false, false
		}
		return end, false, true
	}
	return 0, false, false
}
