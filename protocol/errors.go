package protocol

import "errors"

// ReplyError is a request that mcproxy answers itself, without forwarding,
// because memcached would reject it. Line is memcached's reply without the
// trailing CRLF.
type ReplyError struct {
	Line string
}

func (e *ReplyError) Error() string { return e.Line }

// The replies memcached gives to bad input, byte for byte.
var (
	ErrUnknownCommand  = &ReplyError{Line: "ERROR"}
	ErrBadFormat       = &ReplyError{Line: "CLIENT_ERROR bad command line format"}
	ErrBadDeleteFormat = &ReplyError{Line: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"}
	ErrBadExptime      = &ReplyError{Line: "CLIENT_ERROR invalid exptime argument"}
	ErrBadDelta        = &ReplyError{Line: "CLIENT_ERROR invalid numeric delta argument"}
	ErrBadDataChunk    = &ReplyError{Line: "CLIENT_ERROR bad data chunk"}
	ErrTooLarge        = &ReplyError{Line: "SERVER_ERROR object too large for cache"}
	// ErrShutdownNotEnabled answers shutdown, with any arguments and even
	// with noreply, as memcached does when it runs without -A.
	ErrShutdownNotEnabled = &ReplyError{Line: "ERROR: shutdown not enabled"}

	// The replies memcached 1.6.18 gives to bad meta command lines, byte for
	// byte. md and ma answer every flag error with ErrMetaInvalidFlags.
	ErrMetaDuplicateFlag  = &ReplyError{Line: "CLIENT_ERROR duplicate flag"}
	ErrMetaInvalidFlag    = &ReplyError{Line: "CLIENT_ERROR invalid flag"}
	ErrMetaBadToken       = &ReplyError{Line: "CLIENT_ERROR bad token in command line format"}
	ErrMetaBadKeyEncoding = &ReplyError{Line: "CLIENT_ERROR error decoding key"}
	ErrMetaModeLength     = &ReplyError{Line: "CLIENT_ERROR incorrect length for M token"}
	ErrMetaBadInitial     = &ReplyError{Line: "CLIENT_ERROR invalid numeric initial value"}
	ErrMetaBadDelta       = &ReplyError{Line: "CLIENT_ERROR invalid numeric delta value"}
	ErrMetaInvalidFlags   = &ReplyError{Line: "CLIENT_ERROR invalid or duplicate flag"}
	ErrMetaOpaqueTooLong  = &ReplyError{Line: "CLIENT_ERROR opaque token too long"}
	ErrMetaGetTooMany     = &ReplyError{Line: "CLIENT_ERROR options flags are too long"}
	ErrMetaTooMany        = &ReplyError{Line: "CLIENT_ERROR options flags too long"}
	ErrMetaSetMode        = &ReplyError{Line: "CLIENT_ERROR invalid mode for ms M token"}
	ErrMetaArithMode      = &ReplyError{Line: "CLIENT_ERROR invalid mode for ma M token"}
)

// The replies memcached 1.6.18 gives to lru_crawler (proto_text.c,
// process_lru_crawler_command, and crawler.c), byte for byte.
var (
	ErrCrawlerBadClass   = &ReplyError{Line: "BADCLASS invalid class id"}
	ErrCrawlerNotStarted = &ReplyError{Line: "NOTSTARTED no items to crawl"}
	ErrCrawlerSleep      = &ReplyError{Line: "CLIENT_ERROR sleep must be one second or less"}
	// ErrCrawlerBusy: another crawl or dump holds the server's one crawler.
	ErrCrawlerBusy = &ReplyError{Line: "BUSY currently processing crawler request"}
	// ErrMetadumpPipelined: a metadump came while replies to the client's
	// earlier commands were still unsent.
	ErrMetadumpPipelined = &ReplyError{Line: "ERROR cannot pipeline other commands before metadump"}
)

// ErrLineTooLong is returned when a command line exceeds its bound. The
// connection cannot be resynchronised and must be closed after the reply.
var ErrLineTooLong = &ReplyError{Line: "CLIENT_ERROR line too long"}

// ErrBadReply is wrapped by ReplyReader errors for a backend reply that does
// not follow the protocol; the backend connection must be closed.
var ErrBadReply = errors.New("malformed backend reply")

// ErrWouldBlock is what the stream under a RequestReader or ReplyReader
// returns from Read when it has no more bytes for now (a non-blocking
// socket). The readers pass it on having consumed nothing they cannot
// resume from: call again, with the same arguments, once more bytes can be
// read.
var ErrWouldBlock = errors.New("protocol: no bytes available yet")
