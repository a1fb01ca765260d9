package protocol

import (
	"bytes"
	"io"
)

// RequestReader parses client commands from a stream. It owns one buffer
// that grows only as far as the protocol's limits allow, so the memory a
// client can make it hold is bounded.
type RequestReader struct {
	rd          io.Reader
	buf         []byte
	r, w        int // unread bytes are buf[r:w]
	maxItemSize int
	swallow     int // bytes of a refused data block still to throw away
	toks        [][]byte
	meta        MetaRequest        // the flags of the last meta command
	keyBuf      [MaxKeyLength]byte // the last base64 key, decoded
	started     bool               // the stream's first bytes were found to be text
}

// NewRequestReader returns a reader of client commands from rd that refuses
// data blocks larger than maxItemSize bytes (DefaultMaxItemSize when <= 0).
func NewRequestReader(rd io.Reader, maxItemSize int) *RequestReader {
	if maxItemSize <= 0 {
		maxItemSize = DefaultMaxItemSize
	}
	return &RequestReader{rd: rd, buf: make([]byte, initialBufferSize), maxItemSize: maxItemSize}
}

// Buffered returns how many bytes have been read from the stream but not
// parsed yet. When it is zero the next Next will block on the stream.
func (rr *RequestReader) Buffered() int { return rr.w - rr.r }

// Next parses the next command into req.
//
// A nil error means req is a valid command; for a storage command the caller
// must then call ReadData. A *ReplyError means memcached would refuse the
// command: the caller answers ReplyError.Line unless req.NoReply is set (then
// memcached answers nothing) and carries on with the next command; the
// reader has already arranged for a refused data block to be skipped where
// memcached skips it. ErrLineTooLong, a *ForeignError (the client speaks
// HTTP, the binary protocol or TLS) and any other error end the connection.
func (rr *RequestReader) Next(req *Request) error {
	req.reset()
	if !rr.started {
		if err := rr.checkStart(); err != nil {
			return err
		}
		rr.started = true
	}
	if rr.swallow > 0 {
		if err := rr.discard(); err != nil {
			return err
		}
	}
	rr.maybeShrink()
	line, err := rr.readLine()
	if err != nil {
		return err
	}
	// memcached treats the line as a C string: a NUL byte ends it.
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	rr.toks = tokenize(line, rr.toks[:0])
	return rr.parse(req, line, rr.toks)
}

// ReadData reads the data block of the storage command or ms Next just returned
// into dst, which must be req.Bytes+2 long (the block and its CRLF). It
// returns ErrBadDataChunk when the block does not end in CRLF; as in
// memcached the bytes are consumed either way.
func (rr *RequestReader) ReadData(dst []byte) error {
	n, err := rr.ContinueData(dst, 0)
	for err == ErrWouldBlock && n < len(dst) {
		n, err = rr.ContinueData(dst, n)
	}
	return err
}

// ContinueData is ReadData for a non-blocking stream: it fills dst[have:],
// first from the buffer, then straight from the stream, and returns how
// much of dst is filled. On ErrWouldBlock call it again with that count
// once more bytes can be read; the request's byte slices are no longer
// valid by then, since the buffer is reused.
func (rr *RequestReader) ContinueData(dst []byte, have int) (int, error) {
	n := copy(dst[have:], rr.buf[rr.r:rr.w])
	rr.r += n
	have += n
	for have < len(dst) {
		k, err := rr.rd.Read(dst[have:])
		have += k
		if err != nil && have < len(dst) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return have, err
		}
	}
	if len(dst) < 2 || dst[len(dst)-2] != '\r' || dst[len(dst)-1] != '\n' {
		return have, ErrBadDataChunk
	}
	return have, nil
}

// DiscardData skips the data block of the command Next just returned
// (storage or ms) instead of reading it: the reader throws the block away,
// without buffering it, before it parses the next command.
func (rr *RequestReader) DiscardData(req *Request) {
	rr.swallow = req.Bytes + 2
}

// discard throws away the rest of a refused data block.
func (rr *RequestReader) discard() error {
	for rr.swallow > 0 {
		if rr.r == rr.w {
			rr.r, rr.w = 0, 0
			n, err := rr.rd.Read(rr.buf)
			rr.w = n
			if n == 0 && err != nil {
				return err
			}
		}
		k := min(rr.swallow, rr.w-rr.r)
		rr.r += k
		rr.swallow -= k
	}
	return nil
}

// maybeShrink gives back a buffer that grew for one long line once it is
// drained, so an idle connection holds only the initial buffer.
func (rr *RequestReader) maybeShrink() {
	if rr.r == rr.w {
		rr.r, rr.w = 0, 0
		if len(rr.buf) > 4*initialBufferSize {
			rr.buf = make([]byte, initialBufferSize)
		}
	}
}

// readLine returns the next line without its "\n" and without one "\r"
// before it, as memcached's try_read_command_ascii does.
//
// A line may hold at most lineLimit bytes, not counting its CRLF. Whether a
// line is too long depends only on the line, never on how its bytes were
// split into reads: a complete line is measured too, and a partial line is
// refused only once it is certainly over (limit+2 bytes with no newline,
// since one "\r" may still be the start of the line's end).
func (rr *RequestReader) readLine() ([]byte, error) {
	scanned := 0 // bytes after rr.r known to hold no newline
	for {
		if i := bytes.IndexByte(rr.buf[rr.r+scanned:rr.w], '\n'); i >= 0 {
			end := rr.r + scanned + i
			line := rr.buf[rr.r:end]
			content := len(line)
			if content > 0 && line[content-1] == '\r' {
				content--
			}
			if content > lineLimit(line) {
				return nil, ErrLineTooLong
			}
			rr.r = end + 1
			if len(line) > 1 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			return line, nil
		}
		scanned = rr.w - rr.r
		limit := lineLimit(rr.buf[rr.r:rr.w])
		if scanned >= limit+2 {
			return nil, ErrLineTooLong
		}
		if err := rr.fill(limit + 2); err != nil {
			return nil, err
		}
	}
}

// lineLimit returns the longest a line starting with b may be. A partial
// line is classified as its whole line would be once it holds more than
// maxLeadingSpaces+5 bytes, long before any limit matters.
func lineLimit(b []byte) int {
	if isRetrievalLine(b) {
		return MaxRetrievalLineLength
	}
	if isMetaLine(b) {
		return MaxMetaLineLength
	}
	return MaxLineLength
}

// fill reads more bytes, compacting or growing the buffer (up to size) when
// it is full.
func (rr *RequestReader) fill(size int) error {
	if rr.w == len(rr.buf) {
		if rr.r > 0 {
			rr.w = copy(rr.buf, rr.buf[rr.r:rr.w])
			rr.r = 0
		}
		if rr.w == len(rr.buf) {
			nb := make([]byte, min(2*len(rr.buf), size))
			rr.w = copy(nb, rr.buf[:rr.w])
			rr.buf = nb
		}
	}
	n, err := rr.rd.Read(rr.buf[rr.w:])
	rr.w += n
	if n == 0 && err != nil {
		if err == io.EOF && rr.w > rr.r {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// maxLeadingSpaces is how many spaces memcached lets precede a long get
// line; with more it closes the connection.
const maxLeadingSpaces = 100

// isRetrievalLine reports whether a partial line is a get-family command,
// the only kind allowed to be long.
func isRetrievalLine(b []byte) bool {
	i := 0
	for i < len(b) && b[i] == ' ' {
		if i++; i > maxLeadingSpaces {
			return false
		}
	}
	b = b[i:]
	return bytes.HasPrefix(b, []byte("get ")) || bytes.HasPrefix(b, []byte("gets ")) ||
		bytes.HasPrefix(b, []byte("gat ")) || bytes.HasPrefix(b, []byte("gats "))
}

// tokenize splits a line on spaces only, like memcached's tokenize_command:
// tabs and other control bytes stay inside tokens.
func tokenize(line []byte, toks [][]byte) [][]byte {
	start := -1
	for i, c := range line {
		if c == ' ' {
			if start >= 0 {
				toks = append(toks, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		toks = append(toks, line[start:])
	}
	return toks
}

// validKey reports whether k may be sent to a backend: 1 to MaxKeyLength
// bytes with no control characters (the tokenizer already excludes spaces).
// memcached's text parser only checks the length; protocol.txt forbids
// control characters, and so does mcproxy, so that a key can never smuggle
// a line break into a backend connection.
func validKey(k []byte) bool {
	if len(k) == 0 || len(k) > MaxKeyLength {
		return false
	}
	for _, c := range k {
		if c < 0x21 || c == 0x7f {
			return false
		}
	}
	return true
}

func isNoReply(tok []byte) bool { return string(tok) == "noreply" }

// parse interprets a tokenized line, following memcached's
// process_command_ascii. n mirrors memcached's ntokens, which counts a
// terminating empty token, so the bounds below read as in memcached.
func (rr *RequestReader) parse(req *Request, line []byte, toks [][]byte) error {
	n := len(toks) + 1
	if len(toks) == 0 || len(toks[0]) < 2 {
		return ErrUnknownCommand
	}
	switch string(toks[0]) {
	case "get", "bget":
		return parseRetrieval(req, OpGet, toks)
	case "gets":
		return parseRetrieval(req, OpGets, toks)
	case "gat":
		return parseRetrieval(req, OpGat, toks)
	case "gats":
		return parseRetrieval(req, OpGats, toks)
	case "set":
		return rr.parseStorage(req, OpSet, toks, n)
	case "add":
		return rr.parseStorage(req, OpAdd, toks, n)
	case "replace":
		return rr.parseStorage(req, OpReplace, toks, n)
	case "append":
		return rr.parseStorage(req, OpAppend, toks, n)
	case "prepend":
		return rr.parseStorage(req, OpPrepend, toks, n)
	case "cas":
		return rr.parseStorage(req, OpCas, toks, n)
	case "incr":
		return parseKeyAndArg(req, OpIncr, toks, n)
	case "decr":
		return parseKeyAndArg(req, OpDecr, toks, n)
	case "touch":
		return parseKeyAndArg(req, OpTouch, toks, n)
	case "delete":
		return parseDelete(req, toks, n)
	case "flush_all":
		return parseFlushAll(req, toks, n)
	case "version":
		req.Op = OpVersion
		return nil
	case "quit":
		req.Op = OpQuit
		return nil
	case "stats":
		req.Op = OpStats
		req.Args = append(req.Args, toks[1:]...)
		return nil
	case "verbosity":
		return parseVerbosity(req, toks, n)
	case "mg":
		return rr.parseMeta(req, OpMetaGet, line, toks)
	case "ms":
		return rr.parseMeta(req, OpMetaSet, line, toks)
	case "md":
		return rr.parseMeta(req, OpMetaDelete, line, toks)
	case "ma":
		return rr.parseMeta(req, OpMetaArithmetic, line, toks)
	case "mn":
		return rr.parseMetaNoop(req, line)
	case "me":
		return rr.parseMetaDebug(req, line, toks)
	case "lru_crawler":
		return parseLruCrawler(req, toks, n) // lru_crawler.go
	case "shutdown":
		// A client never stops the proxy, nor, through it, a backend.
		return ErrShutdownNotEnabled
	}
	if isHTTPLine(toks) {
		return errHTTP
	}
	return ErrUnknownCommand
}

func parseRetrieval(req *Request, op Op, toks [][]byte) error {
	if len(toks) < 2 {
		return ErrUnknownCommand
	}
	req.Op = op
	keys := toks[1:]
	if op == OpGat || op == OpGats {
		if err := parseExptime(req, toks[1]); err != nil {
			return err
		}
		keys = toks[2:]
	}
	for _, k := range keys {
		if !validKey(k) {
			return ErrBadFormat
		}
	}
	req.Keys = append(req.Keys, keys...)
	return nil
}

func (rr *RequestReader) parseStorage(req *Request, op Op, toks [][]byte, n int) error {
	if op == OpCas {
		if n != 7 && n != 8 {
			return ErrUnknownCommand
		}
	} else if n != 6 && n != 7 {
		return ErrUnknownCommand
	}
	req.Op = op
	req.NoReply = isNoReply(toks[len(toks)-1])
	key := toks[1]
	if !validKey(key) {
		return ErrBadFormat
	}
	req.Keys = append(req.Keys, key)
	flags, ok1 := parseUint32(toks[2])
	exp, ok2 := parseInt32(toks[3])
	vlen, ok3 := parseInt32(toks[4])
	if !ok1 || !ok2 || !ok3 {
		return ErrBadFormat
	}
	if op == OpCas {
		cas, ok := parseUint64(toks[5])
		if !ok {
			return ErrBadFormat
		}
		req.Cas = cas
	}
	if vlen < 0 || vlen > 1<<31-1-2 {
		return ErrBadFormat
	}
	req.Flags, req.Exptime, req.Bytes = flags, exp, int(vlen)
	if req.Bytes > rr.maxItemSize {
		// memcached answers at once and swallows the block unread.
		rr.swallow = req.Bytes + 2
		return ErrTooLarge
	}
	return nil
}

// parseKeyAndArg parses the "<command> <key> <arg> [noreply]" shape that
// incr and decr (arg is the delta) and touch (arg is the exptime) share.
func parseKeyAndArg(req *Request, op Op, toks [][]byte, n int) error {
	if n != 4 && n != 5 {
		return ErrUnknownCommand
	}
	req.Op = op
	req.NoReply = isNoReply(toks[len(toks)-1])
	if !validKey(toks[1]) {
		return ErrBadFormat
	}
	req.Keys = append(req.Keys, toks[1])
	if op == OpTouch {
		return parseExptime(req, toks[2])
	}
	delta, ok := parseUint64(toks[2])
	if !ok {
		return ErrBadDelta
	}
	req.Delta = delta
	return nil
}

// parseExptime sets req.Exptime, the exptime of touch, gat and gats, from
// tok.
func parseExptime(req *Request, tok []byte) error {
	exp, ok := parseInt32(tok)
	if !ok {
		return ErrBadExptime
	}
	req.Exptime = exp
	return nil
}

func parseDelete(req *Request, toks [][]byte, n int) error {
	if n < 3 || n > 5 {
		return ErrUnknownCommand
	}
	req.Op = OpDelete
	if n > 3 {
		// Only "delete <key> 0", "delete <key> noreply" and
		// "delete <key> 0 noreply" are valid; the 0 is a relic of the old
		// hold time.
		holdIsZero := string(toks[2]) == "0"
		req.NoReply = isNoReply(toks[len(toks)-1])
		valid := (n == 4 && (holdIsZero || req.NoReply)) || (n == 5 && holdIsZero && req.NoReply)
		if !valid {
			return ErrBadDeleteFormat
		}
	}
	if !validKey(toks[1]) {
		return ErrBadFormat
	}
	req.Keys = append(req.Keys, toks[1])
	return nil
}

func parseFlushAll(req *Request, toks [][]byte, n int) error {
	if n < 2 || n > 4 {
		return ErrUnknownCommand
	}
	req.Op = OpFlushAll
	req.NoReply = isNoReply(toks[len(toks)-1])
	want := 2
	if req.NoReply {
		want = 3
	}
	if n != want {
		d, ok := parseInt32(toks[1])
		if !ok {
			return ErrBadExptime
		}
		req.Delay, req.HasDelay = d, true
	}
	return nil
}

func parseVerbosity(req *Request, toks [][]byte, n int) error {
	if n != 3 && n != 4 {
		return ErrUnknownCommand
	}
	req.Op = OpVerbosity
	req.NoReply = isNoReply(toks[len(toks)-1])
	if _, ok := parseUint32(toks[1]); !ok {
		return ErrBadFormat
	}
	return nil
}
