package textclient

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// MaxValueBytes bounds the data block a VALUE line may announce: a larger
// one is taken for a malformed reply rather than read (or allocated for).
const MaxValueBytes = 64 << 20

// Value is one VALUE block of a retrieval reply. Key and Data are valid
// until the next read.
type Value struct {
	Key    []byte
	Flags  uint32
	Cas    uint64
	HasCas bool
	Data   []byte
}

// ReadValue reads the next part of a retrieval reply (get, gets, gat):
// end=true at END, or a VALUE block into v, which the Reader keeps until
// its next read. An error line returns one of the Err*Reply errors; the
// caller decides whether one is allowed where it came (only in place of
// the whole reply).
func (rr *Reader) ReadValue(v *Value) (end bool, err error) {
	rest, end, err := rr.readItem("VALUE ", "a retrieval", true)
	if err != nil || end {
		return end, err
	}
	h, ok := parseValueLine(rest)
	if !ok {
		return false, fmt.Errorf("%w: malformed VALUE %.80q", ErrProtocol, rest)
	}
	// The key lives in the read buffer, which the data read below may
	// overwrite: keep a copy in front of the data.
	kl := len(h.key)
	need := kl + h.bytes + 2
	if cap(rr.val) < need {
		rr.val = make([]byte, need)
	}
	rr.val = rr.val[:need]
	copy(rr.val, h.key)
	if _, err := io.ReadFull(rr.r, rr.val[kl:]); err != nil {
		return false, noEOF(err)
	}
	if rr.val[need-2] != '\r' || rr.val[need-1] != '\n' {
		return false, fmt.Errorf("%w: data block of %q not ended by CRLF", ErrProtocol, rr.val[:kl])
	}
	*v = Value{Key: rr.val[:kl], Flags: h.flags, Cas: h.cas, HasCas: h.hasCas, Data: rr.val[kl : need-2]}
	return false, nil
}

// ReadOne reads the reply to a get of one key: found tells whether its
// VALUE came back, into v. A VALUE for another key, or a second one, is an
// ErrProtocol error; an error line one of the Err*Reply errors.
func (rr *Reader) ReadOne(key []byte, v *Value) (found bool, err error) {
	end, err := rr.ReadValue(v)
	if err != nil || end {
		return false, err
	}
	if !bytes.Equal(v.Key, key) {
		return false, fmt.Errorf("%w: VALUE for key %.80q, asked for %q", ErrProtocol, v.Key, key)
	}
	l, err := rr.Line()
	if err != nil {
		return false, err
	}
	if !bytes.Equal(l, []byte("END")) {
		return false, fmt.Errorf("%w: %.80q after the value of %q, want END", ErrProtocol, l, key)
	}
	return true, nil
}

// ReadGet reads the reply to "get keys..." without keeping the values:
// zero or more VALUE blocks, then END. It returns how many keys were found.
// Each VALUE must name one of the requested keys, in request order
// (memcached answers in that order), and when checkValue is set its data
// must begin with its key (the load stores values that way), so a reply
// meant for another command or key is caught. An error line in place of
// the reply returns one of the Err*Reply errors. It does not allocate.
func (rr *Reader) ReadGet(keys [][]byte, checkValue bool) (hits int, err error) {
	next := 0 // index of the first requested key not yet matched
	for {
		rest, end, err := rr.readItem("VALUE ", "get", hits == 0)
		if err != nil || end {
			return hits, err
		}
		h, ok := parseValueLine(rest)
		if !ok {
			return hits, fmt.Errorf("%w: malformed VALUE %.80q", ErrProtocol, rest)
		}
		j := next
		for j < len(keys) && !bytes.Equal(keys[j], h.key) {
			j++
		}
		if j == len(keys) {
			return hits, fmt.Errorf("%w: VALUE for key %.80q not requested (or out of order)", ErrProtocol, h.key)
		}
		next = j + 1
		if err := rr.discard(keys[j], h.bytes, checkValue); err != nil {
			return hits, err
		}
		hits++
	}
}

// discard consumes a data block of n bytes and its CRLF.
func (rr *Reader) discard(key []byte, n int, checkValue bool) error {
	if checkValue {
		m := min(len(key), n)
		p, err := rr.r.Peek(m)
		if err != nil {
			return noEOF(err)
		}
		if !bytes.Equal(p, key[:m]) {
			return fmt.Errorf("%w: value of key %q begins %q, not its key", ErrProtocol, key, p)
		}
	}
	if _, err := rr.r.Discard(n); err != nil {
		return noEOF(err)
	}
	c1, err := rr.r.ReadByte()
	if err != nil {
		return noEOF(err)
	}
	c2, err := rr.r.ReadByte()
	if err != nil {
		return noEOF(err)
	}
	if c1 != '\r' || c2 != '\n' {
		return fmt.Errorf("%w: data block of key %q not ended by CRLF", ErrProtocol, key)
	}
	return nil
}

// valueLine is a parsed "<key> <flags> <bytes> [<cas>]".
type valueLine struct {
	key    []byte
	flags  uint32
	bytes  int
	cas    uint64
	hasCas bool
}

// parseValueLine parses the rest of a VALUE line without allocating: single
// spaces, no trailing space, numbers in range.
func parseValueLine(b []byte) (h valueLine, ok bool) {
	var fields [4][]byte
	nf := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, ' ')
		if i == 0 || nf == len(fields) {
			return h, false
		}
		if i < 0 {
			i = len(b)
		}
		fields[nf] = b[:i]
		nf++
		b = b[i:]
		if len(b) > 0 {
			b = b[1:]
			if len(b) == 0 { // trailing space
				return h, false
			}
		}
	}
	if nf < 3 {
		return h, false
	}
	flags, ok1 := ParseUint(fields[1], 1<<32-1)
	n, ok2 := ParseUint(fields[2], MaxValueBytes)
	ok3 := true
	if h.hasCas = nf == 4; h.hasCas {
		h.cas, ok3 = ParseUint(fields[3], 1<<64-1)
	}
	if !ok1 || !ok2 || !ok3 {
		return h, false
	}
	h.key, h.flags, h.bytes = fields[0], uint32(flags), int(n)
	return h, true
}

// ParseUint parses a decimal number no larger than limit: digits only, as
// memcached writes them, with no sign or space. It allocates only for a
// malformed number.
func ParseUint(b []byte, limit uint64) (uint64, bool) {
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || v > limit {
		return 0, false
	}
	return v, true
}
