package protocol

import (
	"bytes"
	"encoding/binary"
)

// Foreign names a protocol other than memcached's text protocol that a
// client turned out to speak. Such a connection is answered (where the other
// side can read an answer) and closed: reading on would glue its bytes to
// the next text command, or run commands smuggled inside it.
type Foreign uint8

const (
	// NotForeign: the bytes seen so far may be the text protocol.
	NotForeign Foreign = iota
	// ForeignHTTP is an HTTP request line, such as any web page can make a
	// browser send to 127.0.0.1:11211 with a body of memcached commands.
	ForeignHTTP
	// ForeignBinary is memcached's binary protocol (first byte 0x80).
	ForeignBinary
	// ForeignTLS is a TLS handshake record (a ClientHello) on a plain port.
	ForeignTLS
	// NumForeign bounds the Foreign values, for tables indexed by them.
	NumForeign
)

func (f Foreign) String() string {
	switch f {
	case ForeignHTTP:
		return "http"
	case ForeignBinary:
		return "binary"
	case ForeignTLS:
		return "tls"
	}
	return "text"
}

// ForeignError ends a connection that speaks another protocol. The caller
// writes Reply (which may be empty), after the replies already owed to the
// client, and closes the connection.
type ForeignError struct {
	Kind  Foreign
	Reply []byte
}

func (e *ForeignError) Error() string {
	return "client speaks the " + e.Kind.String() + " protocol, not memcached's text protocol"
}

// errHTTP is what memcached does with an HTTP request line: it closes the
// connection without a word, so nothing after the line (headers, or a body
// of memcached commands) is ever run.
var errHTTP = &ForeignError{Kind: ForeignHTTP}

// Binary protocol constants, from memcached's protocol_binary.h.
const (
	binaryRequestMagic  = 0x80
	binaryResponseMagic = 0x81
	binaryHeaderLen     = 24
	// binaryUnknownCommand is the status memcached answers to an opcode it
	// does not know.
	binaryUnknownCommand = 0x0081
	binaryUnknownMessage = "Unknown command"
)

// TLS record layer: a handshake record (content type 22) whose major
// version is 3 (SSL 3.0 and every TLS version) and minor version 0 to 4.
const (
	tlsHandshake   = 0x16
	tlsMajor       = 0x03
	tlsMaxMinor    = 0x04
	tlsSignatureLn = 3
)

// ClassifyStart says which protocol the first bytes of a connection speak,
// as far as they tell: ForeignBinary or ForeignTLS, or NotForeign when they
// may be the text protocol. more is true when b is too short to decide (it
// is the start of a TLS signature); the caller reads more and asks again.
// No text command starts with these bytes, so a text client is never
// refused. HTTP is recognised per line instead, as memcached does (see
// RequestReader.Next).
func ClassifyStart(b []byte) (f Foreign, more bool) {
	if len(b) == 0 {
		return NotForeign, true
	}
	switch b[0] {
	case binaryRequestMagic:
		// memcached picks its protocol from this byte alone.
		return ForeignBinary, false
	case tlsHandshake:
		if len(b) > 1 && b[1] != tlsMajor || len(b) > 2 && b[2] > tlsMaxMinor {
			return NotForeign, false
		}
		if len(b) < tlsSignatureLn {
			return NotForeign, true
		}
		return ForeignTLS, false
	}
	return NotForeign, false
}

// BinaryUnknownCommand returns memcached's binary-protocol answer to a
// command it does not know, for the request whose header starts hdr: magic
// 0x81, the request's opcode and opaque, status 0x0081 and the body
// "Unknown command". mcproxy speaks only the text protocol, and this is the
// one binary reply every binary client can read; the connection closes
// after it. hdr must hold at least binaryHeaderLen bytes.
func BinaryUnknownCommand(hdr []byte) []byte {
	out := make([]byte, binaryHeaderLen, binaryHeaderLen+len(binaryUnknownMessage))
	out[0] = binaryResponseMagic
	out[1] = hdr[1] // opcode
	binary.BigEndian.PutUint16(out[6:8], binaryUnknownCommand)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(binaryUnknownMessage)))
	copy(out[12:16], hdr[12:16]) // opaque
	return append(out, binaryUnknownMessage...)
}

// checkStart classifies the start of the stream, reading the few more bytes
// a decision or a binary reply needs. It returns a *ForeignError for a
// foreign protocol, a read error when the stream ends or fails before the
// text protocol is certain, and nil for text.
func (rr *RequestReader) checkStart() error {
	for {
		f, more := ClassifyStart(rr.buf[rr.r:rr.w])
		switch {
		case f == ForeignTLS:
			// A TLS client cannot read a plain-text error: just close.
			return &ForeignError{Kind: ForeignTLS}
		case f == ForeignBinary:
			return rr.binaryStart()
		case !more:
			return nil
		}
		if err := rr.fill(tlsSignatureLn); err != nil {
			return err
		}
	}
}

// binaryStart reads the first binary request header to answer it in kind.
// When the stream ends or fails first, the connection closes unanswered.
func (rr *RequestReader) binaryStart() error {
	for rr.w-rr.r < binaryHeaderLen {
		if err := rr.fill(binaryHeaderLen); err != nil {
			if err == ErrWouldBlock {
				return err // the header may yet arrive
			}
			return &ForeignError{Kind: ForeignBinary}
		}
	}
	return &ForeignError{Kind: ForeignBinary, Reply: BinaryUnknownCommand(rr.buf[rr.r:rr.w])}
}

// maxTokens is memcached's MAX_TOKENS less its terminating token: its
// tokenizer splits at most this many tokens off a line and leaves the rest
// of the line unsplit.
const maxTokens = 23

// isHTTPLine reports whether memcached closes the connection on this line
// of a command it does not know: process_command_ascii does so when the
// line's last token (of the first maxTokens) starts with "HTTP/", but only
// for a command that falls through its whole dispatch. Commands starting
// with a letter it dispatches on, 2-byte commands starting with 'm', and
// the few named commands it checks by name get their usual answer instead.
func isHTTPLine(toks [][]byte) bool {
	cmd := toks[0]
	switch cmd[0] {
	case 'g', 's', 'a', 'c', 'i', 'd', 't':
		return false
	case 'm':
		if len(cmd) == 2 {
			return false
		}
	}
	switch string(cmd) {
	case "lru_crawler", "watch", "lru", "extstore", "refresh_certs":
		return false
	}
	last := toks[min(len(toks), maxTokens)-1]
	return bytes.HasPrefix(last, []byte("HTTP/"))
}
