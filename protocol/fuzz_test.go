package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// fuzzMaxItem is the item size limit the request fuzzers run with: small, so
// that both sides of it are easy to reach.
const fuzzMaxItem = 64

// FuzzRequestReader feeds arbitrary client bytes through the parser and
// checks, for every input:
//   - it never panics or stops making progress, and its buffer never grows
//     past MaxRetrievalLineLength+2 bytes;
//   - every error is one of memcached's replies (then parsing carries on),
//     ErrLineTooLong or a *ForeignError (the connection closes) or the end
//     of the stream;
//   - what it accepts is well formed (valid keys, a storage size within the
//     limit, the right number of keys) and, for ErrTooLarge, names the key
//     the proxy must drop;
//   - every accepted command survives a round trip through the canonical
//     encoding the proxy sends to backends, re-encoding is a fixed point, and
//     the canonical line is never longer than the client's line (so it is
//     within every limit the client's line was within);
//   - the result does not depend on how the bytes are split into reads;
//   - after any garbage line, a well-formed command parses correctly unless
//     the connection must close.
//
// Seeds live in testdata/fuzz/FuzzRequestReader.
func FuzzRequestReader(f *testing.F) {
	f.Add([]byte("get a b c\r\nset k 0 0 1\r\nx\r\n"))
	f.Fuzz(fuzzRequests)
}

// fuzzRequests is the check of FuzzRequestReader and FuzzMetaRequest: the
// same transcript however in is read, and recovery after garbage.
func fuzzRequests(t *testing.T, in []byte) {
	readThreeWays(t, in, func(rd io.Reader) []string { return requestTranscript(t, in, rd) })
	checkRecovery(t, in)
}

// readThreeWays returns transcript's account of in read whole, after
// checking that reading it a byte at a time and as a non-blocking stream
// that stutters tells the same.
func readThreeWays(t *testing.T, in []byte, transcript func(io.Reader) []string) string {
	t.Helper()
	whole := strings.Join(transcript(bytes.NewReader(in)), "\n")
	split := strings.Join(transcript(oneByteReader{bytes.NewReader(in)}), "\n")
	stutter := strings.Join(transcript(newStutterReader(bytes.NewReader(in))), "\n")
	if whole != split {
		t.Fatalf("result depends on how the input is read:\nwhole %q\nbytes %q", whole, split)
	}
	if whole != stutter {
		t.Fatalf("result differs on a non-blocking stream:\nwhole   %q\nstutter %q", whole, stutter)
	}
	return whole
}

// countingReader counts the bytes handed to the parser, so that the bytes a
// command consumed are known.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// requestTranscript parses in (delivered by rd) the way the proxy does,
// checking every command, and returns one entry per command.
func requestTranscript(t *testing.T, in []byte, rd io.Reader) []string {
	t.Helper()
	cr := &countingReader{r: rd}
	rr := NewRequestReader(cr, fuzzMaxItem)
	var req Request
	var out []string
	for i := 0; i < 10000; i++ {
		start := cr.n - rr.Buffered()
		err := retry(func() error { return rr.Next(&req) })
		if len(rr.buf) > MaxRetrievalLineLength+2 {
			t.Fatalf("buffer grew to %d bytes", len(rr.buf))
		}
		var re *ReplyError
		if errors.As(err, &re) {
			checkReplyError(t, re, &req)
			out = append(out, fmt.Sprintf("%s noreply=%v", re.Line, req.NoReply))
			if re == ErrLineTooLong {
				return out
			}
			continue
		}
		var fe *ForeignError
		if errors.As(err, &fe) {
			return append(out, fmt.Sprintf("foreign %v reply=%q", fe.Kind, fe.Reply))
		}
		if err != nil {
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("unexpected error %v", err)
			}
			return append(out, "eof")
		}
		end := cr.n - rr.Buffered()
		checkRequest(t, &req)
		checkRoundTrip(t, &req, lineContent(in[start:end]))
		s := describe(&req)
		if req.Op.HasData() {
			data := make([]byte, req.Bytes+2)
			switch err := rr.ReadData(data); {
			case err == ErrBadDataChunk:
				s += " " + err.Error()
			case err != nil:
				return append(out, s+" "+err.Error())
			default:
				s += fmt.Sprintf(" data=%q", data)
			}
		}
		out = append(out, s)
	}
	t.Fatal("parser did not make progress")
	return nil
}

// lineContent returns how long the command line at the end of consumed is
// by the reader's measure: without its "\n" and one "\r" before it.
// consumed may start with a refused data block that was thrown away; that
// only makes the result larger, which keeps the check that uses it sound.
func lineContent(consumed []byte) int {
	n := len(consumed) - 1 // the '\n'
	if n > 0 && consumed[n-1] == '\r' {
		n--
	}
	return n
}

var memcachedErrors = map[*ReplyError]bool{
	ErrUnknownCommand: true, ErrBadFormat: true, ErrBadDeleteFormat: true, ErrBadExptime: true,
	ErrBadDelta: true, ErrBadDataChunk: true, ErrTooLarge: true, ErrLineTooLong: true,
	ErrMetaDuplicateFlag: true, ErrMetaInvalidFlag: true, ErrMetaBadToken: true, ErrMetaBadKeyEncoding: true,
	ErrMetaModeLength: true, ErrMetaBadInitial: true, ErrMetaBadDelta: true, ErrMetaInvalidFlags: true,
	ErrMetaOpaqueTooLong: true, ErrMetaGetTooMany: true, ErrMetaTooMany: true, ErrMetaSetMode: true,
	ErrMetaArithMode:   true,
	ErrCrawlerBadClass: true, ErrCrawlerNotStarted: true, ErrCrawlerSleep: true,
	ErrShutdownNotEnabled: true,
}

func checkReplyError(t *testing.T, re *ReplyError, req *Request) {
	t.Helper()
	if !memcachedErrors[re] {
		t.Fatalf("error %q is not one of memcached's replies", re.Line)
	}
	if re == ErrBadDataChunk {
		t.Fatalf("Next returned %q, which only ReadData may", re.Line)
	}
	if re == ErrTooLarge {
		// The proxy drops the stale value of a refused set by this key.
		key := req.Key()
		if req.Op == OpMetaSet {
			key = req.Meta.KeyToken
		}
		if !req.Op.HasData() || len(req.Keys) != 1 || !validKey(key) || req.Bytes <= fuzzMaxItem {
			t.Fatalf("too large without a storage command to drop: %+v", req)
		}
	}
}

// checkRequest checks what the proxy relies on in an accepted command.
func checkRequest(t *testing.T, req *Request) {
	t.Helper()
	if req.Op == OpNone || req.Op >= NumOps {
		t.Fatalf("accepted a command without an op: %+v", req)
	}
	if req.Op.IsMeta() {
		checkMetaRequest(t, req)
	} else {
		for _, k := range req.Keys {
			if !validKey(k) {
				t.Fatalf("accepted key %q", k)
			}
		}
	}
	switch {
	case req.Op == OpGat || req.Op == OpGats:
	case req.Op.IsRetrieval():
		if len(req.Keys) == 0 {
			t.Fatalf("%v without a key", req.Op)
		}
	case req.Op.HasKey():
		if len(req.Keys) != 1 {
			t.Fatalf("%v with %d keys", req.Op, len(req.Keys))
		}
	default:
		if len(req.Keys) != 0 {
			t.Fatalf("%v with keys", req.Op)
		}
	}
	if req.Op.HasData() && (req.Bytes < 0 || req.Bytes > fuzzMaxItem) {
		t.Fatalf("accepted a data block of %d bytes, limit %d", req.Bytes, fuzzMaxItem)
	}
	checkCrawlerRequest(t, req)
}

// checkCrawlerRequest checks that an lru_crawler command, and only one,
// says what it asks: a metadump or crawl exactly one target among every
// class, the hash table and a set of real slab classes.
func checkCrawlerRequest(t *testing.T, req *Request) {
	t.Helper()
	c := req.Crawler
	if req.Op != OpLruCrawler {
		if c != (CrawlerRequest{}) {
			t.Fatalf("%v with crawler fields %+v", req.Op, c)
		}
		return
	}
	targets := 0
	for _, set := range []bool{c.All, c.Hash, c.Classes != 0} {
		if set {
			targets++
		}
	}
	switch c.Sub {
	case CrawlerMetadump, CrawlerCrawl:
		if targets != 1 || c.Classes&1 != 0 || c.N != 0 {
			t.Fatalf("lru_crawler %v with target %+v", c.Sub, c)
		}
	case CrawlerTocrawl, CrawlerSleep, CrawlerEnable, CrawlerDisable:
		if targets != 0 || c.Sub == CrawlerSleep && c.N > 1000000 {
			t.Fatalf("lru_crawler %v with %+v", c.Sub, c)
		}
	default:
		t.Fatalf("lru_crawler without a subcommand: %+v", c)
	}
}

func describe(req *Request) string {
	return fmt.Sprintf("%v keys=%q flags=%d exp=%d bytes=%d cas=%d delta=%d delay=%d/%v noreply=%v args=%q crawler=%+v",
		req.Op, req.Keys, req.Flags, req.Exptime, req.Bytes, req.Cas, req.Delta, req.Delay, req.HasDelay, req.NoReply, req.Args,
		req.Crawler) +
		describeMeta(req.Meta)
}

// canonicalLine returns the line the proxy sends a backend for req, without
// a data block, or nil for a command the proxy answers itself.
func canonicalLine(req *Request) []byte {
	switch {
	case req.Op.IsMeta():
		return AppendMetaCommand(nil, req, MetaRewrite{})
	case req.Op.IsRetrieval():
		return AppendRetrieval(nil, req.Op, req.Exptime, req.Keys)
	case req.Op.IsStorage():
		return AppendStorageLine(nil, req)
	case req.Op == OpIncr, req.Op == OpDecr, req.Op == OpTouch:
		return AppendKeyCommand(nil, req)
	case req.Op == OpDelete:
		return AppendDelete(nil, req.Key())
	case req.Op == OpFlushAll:
		return AppendFlushAll(nil, req)
	case req.Op == OpLruCrawler && req.Crawler.Sub == CrawlerMetadump:
		return AppendMetadump(nil, &req.Crawler)
	}
	return nil
}

// checkRoundTrip re-encodes req canonically, parses it again and compares.
// content is the length of the client's line; the canonical line must not
// be longer.
func checkRoundTrip(t *testing.T, req *Request, content int) {
	t.Helper()
	line := canonicalLine(req)
	if line == nil {
		return
	}
	if bytes.IndexByte(line, '\n') != len(line)-1 || !bytes.HasSuffix(line, crlf) {
		t.Fatalf("canonical line %q has a stray line break", line)
	}
	if len(line)-2 > content {
		t.Fatalf("canonical line %q is longer than the client's line (%d bytes)", line, content)
	}
	stream := line
	if req.Op.HasData() {
		stream = append(append(bytes.Clone(line), bytes.Repeat([]byte("v"), req.Bytes)...), crlf...)
	}
	rr := NewRequestReader(bytes.NewReader(stream), fuzzMaxItem)
	var again Request
	if err := rr.Next(&again); err != nil {
		t.Fatalf("canonical line %q does not parse: %v", line, err)
	}
	if again.Op != req.Op || again.Flags != req.Flags || again.Exptime != req.Exptime ||
		again.Bytes != req.Bytes || again.Cas != req.Cas || again.Delta != req.Delta ||
		again.Delay != req.Delay || again.HasDelay != req.HasDelay || again.NoReply ||
		again.Crawler != req.Crawler ||
		len(again.Keys) != len(req.Keys) {
		t.Fatalf("round trip of %q changed the command:\n%+v\n%+v", line, req, &again)
	}
	if a, b := describeMeta(req.Meta), describeMeta(again.Meta); a != b {
		t.Fatalf("round trip of %q changed the meta command:\n%s\n%s", line, a, b)
	}
	for i := range req.Keys {
		if !bytes.Equal(again.Keys[i], req.Keys[i]) {
			t.Fatalf("round trip changed key %q to %q", req.Keys[i], again.Keys[i])
		}
	}
	if again2 := canonicalLine(&again); !bytes.Equal(again2, line) {
		t.Fatalf("canonical encoding is not a fixed point: %q then %q", line, again2)
	}
	if req.Op.HasData() {
		data := make([]byte, again.Bytes+2)
		if err := rr.ReadData(data); err != nil {
			t.Fatalf("canonical data block of %q: %v", line, err)
		}
	}
	if err := rr.Next(&again); err != io.EOF {
		t.Fatalf("canonical command %q left bytes behind: %v", stream, err)
	}
	if req.Op.IsMeta() {
		checkMetaRewrites(t, req)
	}
}

// feedReader is a stream the test writes to between calls of the parser.
// Reading it empty returns io.EOF, which the parser must never need while
// it holds a complete command.
type feedReader struct{ bytes.Buffer }

// sentinels are well-formed commands, each with its data block.
var sentinels = []string{
	"get recover\r\n",
	"gets r1 r2\r\n",
	"set rk 7 0 3\r\nabc\r\n",
	"delete rk noreply\r\n",
	"incr rn 9\r\n",
	"gat 5 rx\r\n",
	"touch rt 10\r\n",
	"cas rc 1 2 0 42 noreply\r\n\r\n",
	"version\r\n",
	"mg recover v k O7 t\r\n",
	"ms rk 3 T0 F7 q\r\nabc\r\n",
	"mn\r\n",
	"ma rn N0 J5 D2 MD\r\n",
}

// checkRecovery feeds the lines of in one at a time, each followed by a
// sentinel command that must parse exactly as it does on its own. A line
// the parser takes as a storage command gets a data block, and a refused
// too-large one gets the bytes memcached would swallow, before the
// sentinel; that is where memcached's next command starts too.
func checkRecovery(t *testing.T, in []byte) {
	var fd feedReader
	rr := NewRequestReader(&fd, fuzzMaxItem)
	var req Request
	for i, garbage := range bytes.Split(in, []byte("\n")) {
		if i == 64 {
			return
		}
		fd.Write(garbage)
		fd.WriteString("\n")
		err := rr.Next(&req)
		switch {
		case err == ErrLineTooLong:
			return // the connection closes
		case err != nil && rr.swallow > 0:
			// A refused data block that memcached swallows: an item too
			// large, or an ms line refused after its length was read.
			if rr.swallow > 1<<16 {
				return // not worth the time to swallow
			}
			fd.Write(make([]byte, rr.swallow))
		case err == nil && req.Op.HasData():
			fd.Write(bytes.Repeat([]byte("d"), req.Bytes))
			fd.WriteString("\r\n")
			if err := rr.ReadData(make([]byte, req.Bytes+2)); err != nil {
				t.Fatalf("line %q: data block: %v", garbage, err)
			}
		case err != nil:
			var fe *ForeignError
			if errors.As(err, &fe) {
				return // the connection closes
			}
			var re *ReplyError
			if !errors.As(err, &re) {
				t.Fatalf("line %q: %v", garbage, err)
			}
		}
		s := sentinels[i%len(sentinels)]
		fd.WriteString(s)
		got := requestTranscriptOne(t, rr, &req)
		want := requestTranscriptOne(t, NewRequestReader(strings.NewReader(s), fuzzMaxItem), &req)
		if got != want {
			t.Fatalf("after line %q, %q parsed as\n%s\nnot\n%s", garbage, s, got, want)
		}
		if fd.Len() != 0 || rr.Buffered() != 0 {
			t.Fatalf("after line %q, %q left %d bytes", garbage, s, fd.Len()+rr.Buffered())
		}
	}
}

// requestTranscriptOne parses one command and its data block.
func requestTranscriptOne(t *testing.T, rr *RequestReader, req *Request) string {
	t.Helper()
	if err := rr.Next(req); err != nil {
		return "error: " + err.Error()
	}
	s := describe(req)
	if req.Op.HasData() {
		data := make([]byte, req.Bytes+2)
		if err := rr.ReadData(data); err != nil {
			return s + " data error: " + err.Error()
		}
		s += fmt.Sprintf(" data=%q", data)
	}
	return s
}

// FuzzEncodeRequest builds a command from arbitrary fields, encodes it the
// way the proxy does and checks that the parser reads back exactly that
// command: the encoders never write a line that a backend could read
// differently.
func FuzzEncodeRequest(f *testing.F) {
	f.Add(uint8(OpSet), []byte("k"), uint32(1), int32(-5), uint32(3), uint64(7), uint64(9), []byte("a b"))
	f.Add(uint8(OpGat), []byte("k"), uint32(0), int32(-2147483648), uint32(0), uint64(0), uint64(0), []byte("x y z"))
	f.Add(uint8(OpFlushAll), []byte(""), uint32(0), int32(-1000000000), uint32(0), uint64(0), uint64(1), []byte(""))
	f.Fuzz(func(t *testing.T, op uint8, key []byte, flags uint32, exptime int32, size uint32, cas, delta uint64, more []byte) {
		req := Request{Op: Op(op) % NumOps, Flags: flags, Exptime: exptime, Cas: cas, Delta: delta}
		if !validKey(key) || req.Op.IsMeta() { // meta lines are built by FuzzMetaRequest
			return
		}
		req.Keys = append(req.Keys, key)
		switch {
		case req.Op.IsRetrieval():
			for _, k := range bytes.Split(more, []byte(" ")) {
				if validKey(k) {
					req.Keys = append(req.Keys, k)
				}
			}
		case req.Op.IsStorage():
			req.Bytes = int(size % (fuzzMaxItem + 1))
		case req.Op == OpFlushAll:
			req.Keys = nil
			if req.HasDelay = delta&1 == 1; req.HasDelay {
				req.Delay = exptime
			}
		case !req.Op.HasKey():
			return
		}
		if req.Op == OpGat || req.Op == OpGats {
			if len(more) > 0 && more[0] == '-' {
				req.Keys = req.Keys[:0] // gat with no key
			}
		} else if !req.Op.IsStorage() && req.Op != OpTouch {
			req.Exptime = 0
		}
		if req.Op != OpCas {
			req.Cas = 0
		}
		if req.Op != OpIncr && req.Op != OpDecr {
			req.Delta = 0
		}
		if !req.Op.IsStorage() {
			req.Flags = 0
		}
		line := canonicalLine(&req)
		if line == nil {
			t.Fatalf("no canonical line for %+v", &req)
		}
		checkRoundTrip(t, &req, len(line))
	})
}

// FuzzReplyReader feeds arbitrary backend bytes to the reply parser. It must
// not panic, must hold no more than its bounds, must give the same result
// however the bytes are split into reads, and must accept exactly what a
// strict, separately written reading of memcached's reply grammar accepts,
// ending each reply at the same byte. Seeds live in
// testdata/fuzz/FuzzReplyReader.
func FuzzReplyReader(f *testing.F) {
	f.Add(uint8(1), []byte("VALUE a 0 1\r\nx\r\nEND\r\n"))
	f.Fuzz(func(t *testing.T, kind uint8, in []byte) {
		k := ReplyKind(kind % 3)
		const maxValue = 1024
		a := readThreeWays(t, in, func(rd io.Reader) []string {
			return replyTranscript(t, k, rd, maxValue, func(r *Reply) string { return describeTextReply(t, r) })
		})
		if b := strings.Join(refReplyTranscript(k, in, maxValue), "\n"); a != b {
			t.Fatalf("kind %d: reader and memcached's grammar disagree:\nreader  %q\ngrammar %q", k, a, b)
		}
	})
}

// replyTranscript reads replies of kind k until an error and describes
// each with describe, and then whether the stream ended cleanly between
// two replies.
func replyTranscript(t *testing.T, k ReplyKind, rd io.Reader, maxValue int, describe func(*Reply) string) []string {
	t.Helper()
	rr := NewReplyReader(rd, maxValue)
	var r Reply
	var out []string
	for i := 0; i < 10000; i++ {
		err := retry(func() error { return rr.ReadReply(k, &r) })
		if len(rr.buf) > maxReplyLine {
			t.Fatalf("buffer grew to %d bytes", len(rr.buf))
		}
		if err != nil {
			if err == io.EOF && len(r.Raw) == 0 && rr.Buffered() == 0 {
				return append(out, "clean end")
			}
			return append(out, "refused")
		}
		out = append(out, describe(&r))
	}
	t.Fatal("reply parser did not make progress")
	return nil
}

// describeTextReply describes a text reply and its values, checking that
// each value lies where it should.
func describeTextReply(t *testing.T, r *Reply) string {
	t.Helper()
	s := fmt.Sprintf("reply %q error=%v", r.Raw, r.IsError)
	prev := 0
	for j := range r.Values {
		v := r.Values[j]
		if v.Start != prev || v.KeyStart != v.Start+len("VALUE ") || v.KeyEnd > v.End || v.End > len(r.Raw) {
			t.Fatalf("value %+v out of place in %q", v, r.Raw)
		}
		prev = v.End
		s += fmt.Sprintf(" key=%q block=%q", r.Key(j), r.Block(j))
	}
	return s
}

// refReplyTranscript is replyTranscript for the reference grammar.
func refReplyTranscript(k ReplyKind, in []byte, maxValue int) []string {
	var out []string
	for len(in) > 0 && len(out) < 10000 {
		n, blocks, isErr, ok := refReply(k, in, maxValue)
		if !ok {
			return append(out, "refused")
		}
		s := fmt.Sprintf("reply %q error=%v", in[:n], isErr)
		for _, b := range blocks {
			s += fmt.Sprintf(" key=%q block=%q", b[0], b[1])
		}
		out = append(out, s)
		in = in[n:]
	}
	return append(out, "clean end")
}

// refReply is memcached's reply grammar, written plainly and apart from
// the reader: how many bytes the reply at the start of in takes, the key
// and whole block of each value, whether it is an error, and whether there
// is a complete, valid reply at all.
//
//	reply     = error | line (ReplyLine) | value* "END" (ReplyRetrieval) | stat* "END" (ReplyStats)
//	error     = ("ERROR" | "ERROR " text | "CLIENT_ERROR " text | "SERVER_ERROR " text) CRLF
//	line      = ("STORED" | "NOT_STORED" | "EXISTS" | "NOT_FOUND" | "DELETED" | "TOUCHED" | "OK" |
//	             "VERSION " text | uint64) CRLF
//	value     = "VALUE " key " " uint64 " " size [" " uint64] CRLF data CRLF   (len(data) = size <= maxValue)
//	stat      = "STAT " text CRLF
//
// A line is at most maxReplyLine bytes with its CRLF.
func refReply(k ReplyKind, in []byte, maxValue int) (n int, blocks [][2][]byte, isErr, ok bool) {
	pos := 0
	nextLine := func() (string, bool) {
		i := bytes.IndexByte(in[pos:], '\n')
		if i < 0 || i+1 > maxReplyLine || i == 0 || in[pos+i-1] != '\r' {
			return "", false
		}
		line := string(in[pos : pos+i-1])
		pos += i + 1
		return line, true
	}
	isUint64 := func(s string) bool { _, err := strconv.ParseUint(s, 10, 64); return err == nil }
	line, ok := nextLine()
	if !ok {
		return 0, nil, false, false
	}
	if line == "ERROR" || strings.HasPrefix(line, "ERROR ") ||
		strings.HasPrefix(line, "CLIENT_ERROR ") || strings.HasPrefix(line, "SERVER_ERROR ") {
		return pos, nil, true, true
	}
	if k == ReplyLine {
		switch line {
		case "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED", "TOUCHED", "OK":
			return pos, nil, false, true
		}
		return pos, nil, false, strings.HasPrefix(line, "VERSION ") || isUint64(line)
	}
	for {
		switch {
		case line == "END":
			return pos, blocks, false, true
		case k == ReplyStats && strings.HasPrefix(line, "STAT "):
		case k == ReplyRetrieval && strings.HasPrefix(line, "VALUE "):
			start := pos - len(line) - 2
			f := strings.Split(line, " ")
			if len(f) != 4 && len(f) != 5 {
				return 0, nil, false, false
			}
			key := f[1]
			if len(key) == 0 || len(key) > 250 || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return 0, nil, false, false
			}
			size, err := strconv.ParseUint(f[3], 10, 64)
			if err != nil || !isUint64(f[2]) || (len(f) == 5 && !isUint64(f[4])) || size > uint64(maxValue) {
				return 0, nil, false, false
			}
			end := pos + int(size) + 2
			if end > len(in) || in[end-2] != '\r' || in[end-1] != '\n' {
				return 0, nil, false, false
			}
			pos = end
			blocks = append(blocks, [2][]byte{[]byte(key), in[start:end]})
		default:
			return 0, nil, false, false
		}
		if line, ok = nextLine(); !ok {
			return 0, nil, false, false
		}
	}
}

// FuzzReplyReaderValid builds well-formed memcached replies around
// arbitrary keys and data (data may hold CRLF, "END" and "VALUE" lines) and
// checks that the reader returns each reply exactly, value by value.
func FuzzReplyReaderValid(f *testing.F) {
	f.Add([]byte("k"), []byte("a\r\nEND\r\nVALUE x 0 1\r\n"), uint32(3), uint64(99), uint8(2), []byte("STORED"))
	f.Fuzz(func(t *testing.T, key, data []byte, flags uint32, cas uint64, n uint8, line []byte) {
		if !validKey(key) {
			key = []byte("k")
		}
		if !isLineReply(line) || bytes.ContainsAny(line, "\r\n") {
			line = []byte("STORED")
		}
		var get, want []byte
		for i := 0; i < int(n%4); i++ {
			start := len(get)
			get = fmt.Appendf(get, "VALUE %s %d %d", key, flags, len(data))
			if i%2 == 1 {
				get = fmt.Appendf(get, " %d", cas)
			}
			get = append(append(append(get, "\r\n"...), data...), "\r\n"...)
			want = fmt.Appendf(want, "[%s|%q]", key, get[start:])
		}
		get = append(get, "END\r\n"...)
		stats := []byte("STAT pid 1\r\nSTAT version 1.6.18\r\nEND\r\n")
		stream := bytes.Join([][]byte{line, crlf, get, stats, get, []byte("SERVER_ERROR out of memory\r\n")}, nil)
		for _, rd := range []io.Reader{bytes.NewReader(stream), oneByteReader{bytes.NewReader(stream)}} {
			rr := NewReplyReader(rd, len(data))
			var r Reply
			for _, exp := range []struct {
				kind ReplyKind
				raw  []byte
			}{
				{ReplyLine, append(bytes.Clone(line), crlf...)}, {ReplyRetrieval, get},
				{ReplyStats, stats}, {ReplyRetrieval, get}, {ReplyRetrieval, []byte("SERVER_ERROR out of memory\r\n")},
			} {
				if err := rr.ReadReply(exp.kind, &r); err != nil {
					t.Fatalf("kind %d %q: %v", exp.kind, exp.raw, err)
				}
				if !bytes.Equal(r.Raw, exp.raw) {
					t.Fatalf("kind %d: got %q want %q", exp.kind, r.Raw, exp.raw)
				}
				if exp.kind == ReplyRetrieval && !r.IsError {
					var got []byte
					for j := range r.Values {
						got = fmt.Appendf(got, "[%s|%q]", r.Key(j), r.Block(j))
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("values %s want %s", got, want)
					}
				}
			}
			if err := rr.ReadReply(ReplyLine, &r); err != io.EOF {
				t.Fatalf("after the last reply: %v", err)
			}
		}
	})
}
