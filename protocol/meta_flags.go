package protocol

// MetaFlags is the flag tokens of one meta command or meta reply, in the
// order they came: for each, its letter and the token after the letter
// ("Oabc" is O with "abc"), as offsets into the line they were read from.
// It is a fixed-size value, so parsing one allocates nothing. The token
// slices it returns point into that line and live as long as it does.
//
// Only letters are stored: memcached refuses any other first byte in a
// request, and mcproxy refuses it in a reply. A letter appears at most once.
type MetaFlags struct {
	line []byte
	mask uint64 // bit letterBit(c) is set when c is present
	n    uint8
	list [MaxMetaFlags]metaFlag
}

type metaFlag struct {
	letter     byte
	start, end uint16 // the token after the letter, in line
}

// letterBit maps 'A'..'Z' to 0..25 and 'a'..'z' to 26..51.
func letterBit(c byte) (uint, bool) {
	switch {
	case c >= 'A' && c <= 'Z':
		return uint(c - 'A'), true
	case c >= 'a' && c <= 'z':
		return uint(c-'a') + 26, true
	}
	return 0, false
}

// Len returns how many flags there are.
func (f *MetaFlags) Len() int { return int(f.n) }

// At returns the i-th flag's letter and the token after it.
func (f *MetaFlags) At(i int) (letter byte, token []byte) {
	fl := f.list[i]
	return fl.letter, f.line[fl.start:fl.end]
}

// Has reports whether flag c is present.
func (f *MetaFlags) Has(c byte) bool {
	b, ok := letterBit(c)
	return ok && f.mask&(1<<b) != 0
}

// Token returns the token after flag c's letter, and whether c is present.
func (f *MetaFlags) Token(c byte) ([]byte, bool) {
	if !f.Has(c) {
		return nil, false
	}
	for i := 0; i < int(f.n); i++ {
		if f.list[i].letter == c {
			return f.line[f.list[i].start:f.list[i].end], true
		}
	}
	return nil, false
}

func (f *MetaFlags) reset(line []byte) {
	f.line, f.mask, f.n = line, 0, 0
}

// add records tok, a subslice of f.line whose first byte is a letter not
// yet present. It reports false when the table is full.
func (f *MetaFlags) add(tok []byte) bool {
	if int(f.n) == len(f.list) {
		return false
	}
	b, _ := letterBit(tok[0])
	start := cap(f.line) - cap(tok) + 1 // tok's offset in line, past the letter
	f.list[f.n] = metaFlag{letter: tok[0], start: uint16(start), end: uint16(start + len(tok) - 1)}
	f.n++
	f.mask |= 1 << b
	return true
}
