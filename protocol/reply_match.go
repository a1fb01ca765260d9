package protocol

import (
	"bytes"
	"fmt"
)

// ReadReplyTo reads the reply to cmd, a command that this package's
// encoders wrote for op, and checks that it answers that command, not just
// that it is a well-formed reply. A backend that answers the wrong command
// (a stray reply shifts every later one on the connection) would otherwise
// hand one client's data to another.
//
// What memcached guarantees, and so what is checked:
//   - a retrieval answers the hits among the keys asked, in the order asked:
//     each VALUE is for a key of cmd after the previous VALUE's (a key asked
//     twice may be answered twice);
//   - gets and gats values carry a cas unique, get and gat values never do
//     (memcached 1.6 writes it for gets/gats even with -C, as 0);
//   - a one-line reply is one memcached gives to op: STORED, NOT_STORED,
//     EXISTS or NOT_FOUND to a storage command; DELETED or NOT_FOUND to
//     delete; TOUCHED or NOT_FOUND to touch; a number or NOT_FOUND to incr
//     and decr; OK to flush_all and verbosity; VERSION to version;
//   - a meta reply answers its meta command as CheckMeta says: a code that
//     command gets (VA exactly when v was sent), the O token echoed
//     exactly, the key echoed exactly when k was sent; ME and EN to me, MN
//     to mn;
//   - an error line answers any command.
//
// Anything else is ErrBadReply, and the connection must be closed. Like
// ReadReply it allocates nothing once out has grown to the replies' size.
func (rr *ReplyReader) ReadReplyTo(op Op, cmd []byte, out *Reply) error {
	kind := KindOf(op)
	if kind == ReplyMeta {
		var keyBuf [MaxKeyLength]byte
		e := expectOfLine(op, cmd, keyBuf[:])
		return rr.readReply(kind, nil, &e, out)
	}
	if kind == ReplyRetrieval {
		ask := asked{keys: retrievalKeys(op, cmd), cas: op == OpGets || op == OpGats}
		return rr.readReply(kind, &ask, nil, out)
	}
	if err := rr.readReply(kind, nil, nil, out); err != nil {
		return err
	}
	if kind == ReplyLine && !out.IsError {
		if body := out.Raw[:len(out.Raw)-2]; !answersLine(op, body) {
			return fmt.Errorf("%w: %q in answer to %s", ErrBadReply, clip(body), op)
		}
	}
	return nil
}

// asked is what a retrieval reply may still hold: the keys of the command
// not yet passed, as they appear on its line, and whether values carry a
// cas unique. It lives on the reader's stack for one reply.
type asked struct {
	keys []byte // space-separated
	cas  bool
}

var space = []byte{' '}

// take accepts a VALUE for key if key is among the keys still asked for,
// and passes it and every key before it: a later VALUE may only be for a
// key after it.
func (a *asked) take(key []byte, hasCas bool) error {
	if hasCas != a.cas {
		if a.cas {
			return fmt.Errorf("%w: VALUE for %q without the cas unique asked for", ErrBadReply, clip(key))
		}
		return fmt.Errorf("%w: VALUE for %q with a cas unique not asked for", ErrBadReply, clip(key))
	}
	for len(a.keys) > 0 {
		// The usual case first: the next key asked is the one answered.
		if n := len(key); len(a.keys) >= n && bytes.Equal(a.keys[:n], key) && (len(a.keys) == n || a.keys[n] == ' ') {
			a.keys = a.keys[min(n+1, len(a.keys)):]
			return nil
		}
		_, a.keys, _ = bytes.Cut(a.keys, space)
	}
	return fmt.Errorf("%w: VALUE for %q: not asked, out of order, or repeated", ErrBadReply, clip(key))
}

// retrievalKeys returns the keys of a retrieval line as AppendRetrieval
// writes it, "get|gets <key>..." or "gat|gats <exptime> <key>...", without
// the CRLF.
func retrievalKeys(op Op, cmd []byte) []byte {
	if i := bytes.IndexByte(cmd, '\r'); i >= 0 {
		cmd = cmd[:i]
	}
	skip := 1
	if op == OpGat || op == OpGats {
		skip = 2
	}
	for ; skip > 0; skip-- {
		i := bytes.IndexByte(cmd, ' ')
		if i < 0 {
			return nil
		}
		cmd = cmd[i+1:]
	}
	return cmd
}

// answersLine reports whether body (a line without its CRLF, not an error)
// is a reply memcached gives to op.
func answersLine(op Op, body []byte) bool {
	switch {
	case op.IsStorage():
		switch string(body) {
		case "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND":
			return true
		}
		return false
	case op == OpDelete:
		return string(body) == "DELETED" || string(body) == "NOT_FOUND"
	case op == OpTouch:
		return string(body) == "TOUCHED" || string(body) == "NOT_FOUND"
	case op == OpIncr || op == OpDecr:
		_, ok := parseDecimal(body)
		return ok || string(body) == "NOT_FOUND"
	case op == OpFlushAll || op == OpVerbosity:
		return string(body) == "OK"
	case op == OpVersion:
		return bytes.HasPrefix(body, []byte("VERSION "))
	}
	return isLineReply(body)
}
