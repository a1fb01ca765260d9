package proxy

import "github.com/mcproxy/mcproxy/protocol"

// result is the outcome of one command (or, for retrievals, of one key),
// for the commands-by-result metric.
type result uint8

const (
	resHit       result = iota // retrieval key found; incr/decr applied
	resMiss                    // retrieval key not found
	resStored                  // STORED
	resNotStored               // NOT_STORED
	resExists                  // EXISTS (cas conflict)
	resNotFound                // NOT_FOUND
	resDeleted                 // DELETED
	resTouched                 // TOUCHED
	resOK                      // OK, VERSION, stats: answered
	resError                   // the backend failed or answered an error line
	numResults
)

var resultNames = [numResults]string{
	"hit", "miss", "stored", "not_stored", "exists", "not_found", "deleted", "touched", "ok", "error",
}

// resultLines holds the one-line reply that means each result, for the
// results that have one.
var resultLines = [numResults]string{resStored: "STORED", resNotStored: "NOT_STORED", resExists: "EXISTS",
	resNotFound: "NOT_FOUND", resDeleted: "DELETED", resTouched: "TOUCHED", resOK: "OK"}

// classifyLine maps a one-line backend reply to a result.
func classifyLine(raw []byte) result {
	if len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' {
		return resHit // incr/decr: the new value
	}
	for res, line := range resultLines {
		if line != "" && len(raw) >= len(line) && string(raw[:len(line)]) == line {
			return result(res)
		}
	}
	return resError
}

// countResult counts n outcomes of op.
func (c *counters) countResult(op protocol.Op, res result, n int) {
	if n > 0 {
		c.results[op][res].Add(uint64(n))
	}
}
