package protocol

// Limits of the protocol as memcached enforces them.
const (
	// MaxKeyLength is memcached's KEY_MAX_LENGTH.
	MaxKeyLength = 250

	// DefaultMaxItemSize is memcached's default item size limit (-I 1m).
	DefaultMaxItemSize = 1 << 20

	// MaxLineLength bounds a command line other than a retrieval, not
	// counting its CRLF. memcached closes a connection that sends 2048 bytes
	// without a newline unless the line is a get/gets; we allow a little more
	// room but stay bounded.
	MaxLineLength = 8 << 10

	// MaxRetrievalLineLength bounds a get/gets/gat/gats line (at most 100
	// leading spaces, as in memcached), not counting its CRLF. memcached lets
	// multi-gets grow without limit; a proxy must bound memory per
	// connection, so a line longer than this (about a thousand keys of the
	// maximum length) is refused and the connection closed. A
	// RequestReader's buffer never exceeds MaxRetrievalLineLength+2 bytes.
	//
	// Note that memcached itself closes a connection on a gat/gats line
	// longer than 2048 bytes that does not arrive in one read, so such a
	// line must not be forwarded to a backend whole (see MaxGatLine).
	MaxRetrievalLineLength = 256 << 10

	// MaxGatLine is the longest gat/gats line, CRLF included, that memcached
	// reads safely however it is split across reads: it closes a connection
	// whose unfinished line passes 2048 bytes unless it is a get or gets.
	MaxGatLine = 2048

	// MaxMetaLineLength bounds a meta command line, not counting its CRLF.
	// memcached closes a connection whose unfinished line passes 2048 bytes
	// (unless it is a get or gets), so a meta line the proxy forwards must
	// stay within MaxGatLine however it is split; this bound leaves room for
	// an opaque token the proxy adds of its own (a space and at most
	// MaxMetaOpaqueToken bytes). A longer meta line is refused with
	// ErrLineTooLong and the connection closed.
	MaxMetaLineLength = MaxGatLine - len("\r\n") - 64

	// MaxMetaTokens is the most tokens a meta command line may have,
	// command and key included: memcached refuses more than 19
	// (MFLAG_MAX_OPT_LENGTH counts a terminating empty token too).
	MaxMetaTokens = 19

	// MaxMetaFlags bounds the flags of a meta request (17 for mg) and of a
	// meta reply (a reply adds at most W, X, Z and b to what was asked).
	MaxMetaFlags = 24

	// MaxMetaOpaqueToken is the longest O token memcached accepts, the O
	// included (MFLAG_MAX_OPAQUE_LENGTH).
	MaxMetaOpaqueToken = 32

	// maxMetaReplyLine bounds a meta reply line from a backend, CRLF
	// included. memcached's longest is a k echo of a base64 key plus the
	// return flags, well under a kilobyte.
	maxMetaReplyLine = 4 << 10

	// initialBufferSize matches memcached's READ_BUFFER_SIZE.
	initialBufferSize = 16 << 10
)
