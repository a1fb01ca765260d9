// Package protocol is mcproxy's memcached text protocol: a streaming parser
// for client requests (RequestReader), a streaming parser for backend replies
// (ReplyReader), encoders for the canonical command lines mcproxy sends to
// backends, the protocol's limits, and memcached's exact error strings.
//
// The request parser follows memcached 1.6's proto_text.c closely: commands
// are split on spaces only, numbers are read the way memcached's safe_strto*
// helpers read them, "noreply" silences every reply of the command that
// carries it (errors included), and a storage command whose line is rejected
// does not consume its data block. The aim is that a client sees the same
// bytes from mcproxy as from memcached for the same input, valid or not.
//
// The package knows nothing of sockets, routing or configuration. Parsed
// slices point into the reader's buffer and are valid only until the next
// call on the same reader.
package protocol
