// Package textclient is the tools' and tests' own raw client of the
// memcached text protocol over loopback TCP: the load of mcbench,
// mcfailover, mcsoak and internal/testkit/memcachedtest, the "stats" polls, and the direct looks at a memcached.
//
// It is kept apart from package protocol on purpose: it checks the proxy's
// parsers and encoders from outside, so it must not share their code. It is
// strict (a reply that is malformed or not the one the command calls for is
// an ErrProtocol error, after which the connection is out of step and must
// be closed) and reads in place from its buffer, so the load tools' steady
// state does not allocate.
//
//   - Conn: a connection to a loopback address (ResolveLoopback refuses any
//     other), with a command buffer written in one write per batch.
//   - Reader: the replies: a status line, STORED, a retrieval reply (values
//     kept, or checked and discarded), STAT lines.
//   - Stats: one "stats" exchange on a connection of its own.
package textclient
