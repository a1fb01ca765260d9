// Package protocol is mcproxy's memcached text and meta protocols: a
// streaming parser for client requests (RequestReader), a streaming parser
// for backend replies (ReplyReader), encoders for the canonical command lines mcproxy sends to
// backends, the protocol's limits, and memcached's exact error strings.
//
// The request parser follows memcached 1.6's proto_text.c closely: commands
// are split on spaces only, numbers are read the way memcached's safe_strto*
// helpers read them, "noreply" silences every reply of the command that
// carries it (errors included), and a storage command whose line is rejected
// does not consume its data block. The aim is that a client sees the same
// bytes from mcproxy as from memcached for the same input, valid or not.
//
// The meta commands (mg, ms, md, ma, mn, me) follow memcached 1.6.18: the
// same flags, the same error strings, the same rule for when a refused ms
// swallows its data block. Their flags are kept as a fixed-size table of
// offsets into the line (MetaFlags), a base64 key is decoded into the
// reader's scratch space, and meta replies (ReplyMeta) are framed and can be
// checked against what was asked (CheckMeta), all without allocating.
//
// The package knows nothing of sockets, routing or configuration. Parsed
// slices point into the reader's buffer and are valid only until the next
// call on the same reader.
package protocol
