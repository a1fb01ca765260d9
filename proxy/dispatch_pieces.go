package proxy

import "github.com/mcproxy/mcproxy/protocol"

// dispatchPieces sends a retrieval of more keys than the session's window
// (output_limit.go) as consecutive pieces of at most window keys. Each piece
// is a retrieval of its own in the reply FIFO (split per backend as usual)
// and every piece but the last is rendered without END, so the client reads
// exactly the reply memcached would send: the values in key order, then one
// END.
//
// A piece is sent only when the window has room for it and the client is
// under its soft limit; until then the command stays parked (pieceNext is
// where it stands) and the session reads nothing more, which keeps the
// keys, which point into the read buffer, valid. So the pieces go to the
// backends as the client reads the earlier ones: the proxy holds about one
// window of the reply, not all of it, and the commands of other clients
// reach the shared backend connections between pieces instead of queueing
// behind one huge reply. A client that goes away stops the pieces not yet
// sent.
func (s *session) dispatchPieces(req *protocol.Request) {
	all, w := req.Keys, s.window
	defer func() { req.Keys, s.morePiece = all, false }()
	for i := s.pieceNext; i < len(all); i += w {
		if i > 0 && s.state >= sessLost {
			s.pieceNext = 0
			return
		}
		if i > 0 && !s.p.table.Load().placesAll(all[i:]) {
			// Every backend of a pool of these keys left it since the first
			// piece: the rest are misses, as the keys of a failed backend
			// are.
			rest := len(all) - i
			s.p.stats.countCommand(req.Op, rest)
			s.p.stats.countRetrieval(req.Op, 0, 0, rest)
			s.enqueueLocal("END")
			s.pieceNext = 0
			return
		}
		n := min(w, len(all)-i)
		if i > s.pieceNext && !s.hasRoom() || !s.keysFit(n) {
			s.pieceNext, s.parked = i, true
			return
		}
		req.Keys = all[i : i+n]
		s.morePiece = i+w < len(all)
		s.dispatchRetrieval(req)
	}
	s.pieceNext = 0
}
