package protocol

import "bytes"

// A backend answers "lru_crawler metadump" with one line per item and END,
// or with a one-line refusal instead:
//
//	key=<key> exp=<-1|unix time> la=<unix time> cas=<n> fetch=<yes|no> cls=<n> size=<n>\n
//	...
//	END\r\n
//
// The key is URI-encoded (every byte but letters, digits and "-._~" as %XX),
// so a line never holds a space or a control byte inside a field. memcached
// 1.6.18 ends an item line with a bare "\n"; later versions add
// "flags=<n>" (and, with extstore, "ext_page=" and "ext_offset=") and a
// space before the "\n". ClassifyDumpLine accepts all of these, and nothing
// a client could not take for a dump line or an error.

// DumpLine is the kind of one line of a metadump.
type DumpLine uint8

// The kinds of metadump lines.
const (
	DumpBad     DumpLine = iota // not a line memcached writes in a metadump
	DumpItem                    // one item's metadata
	DumpEnd                     // END: the dump is complete
	DumpBusy                    // ErrCrawlerBusy's line: the server's crawler is taken
	DumpRefused                 // another one-line refusal: ERROR, CLIENT_ERROR, SERVER_ERROR, BADCLASS, NOTSTARTED
)

// MaxDumpLine bounds a metadump line, its line ending included. memcached
// 1.6.18 formats an item line into a 4096-byte buffer; the longest
// possible, a 250-byte key encoded to 750, takes about 900.
const MaxDumpLine = 4096

// dumpFields are the fields after the key, in the order memcached writes
// them; later versions append more, which must look like name=value.
var dumpFields = [...]string{"exp=", "la=", "cas=", "fetch=", "cls=", "size="}

// ClassifyDumpLine says what line, a whole line with its "\n", is in a
// metadump. A refusal is only DumpBusy or DumpRefused where it can stand
// for the whole reply, as the first line; the caller decides that.
func ClassifyDumpLine(line []byte) DumpLine {
	if len(line) > MaxDumpLine || len(line) == 0 || line[len(line)-1] != '\n' {
		return DumpBad
	}
	body := line[:len(line)-1]
	crlfEnd := len(body) > 0 && body[len(body)-1] == '\r'
	if crlfEnd {
		body = body[:len(body)-1]
	}
	if bytes.HasPrefix(body, []byte("key=")) {
		if checkDumpItem(body) {
			return DumpItem
		}
		return DumpBad
	}
	if !crlfEnd || !printable(body) {
		return DumpBad
	}
	switch {
	case string(body) == "END":
		return DumpEnd
	case bytes.HasPrefix(body, []byte("BUSY ")):
		return DumpBusy
	case string(body) == "ERROR", bytes.HasPrefix(body, []byte("ERROR ")),
		bytes.HasPrefix(body, []byte("CLIENT_ERROR ")), bytes.HasPrefix(body, []byte("SERVER_ERROR ")),
		bytes.HasPrefix(body, []byte("BADCLASS ")), bytes.HasPrefix(body, []byte("NOTSTARTED ")):
		return DumpRefused
	}
	return DumpBad
}

// checkDumpItem checks an item line without its line ending.
func checkDumpItem(body []byte) bool {
	body = bytes.TrimSuffix(body, []byte(" ")) // memcached 1.6.2x ends with a space
	tok, rest, _ := bytes.Cut(body, []byte(" "))
	if !validEncodedKey(tok[len("key="):]) {
		return false
	}
	for i, name := range dumpFields {
		if rest == nil {
			return false
		}
		tok, rest, _ = bytes.Cut(rest, []byte(" "))
		v, ok := bytes.CutPrefix(tok, []byte(name))
		if !ok {
			return false
		}
		switch {
		case i == 0 && len(v) > 1 && v[0] == '-': // exp=-1: no expiry
			ok = allDigits(v[1:])
		case name == "fetch=":
			ok = string(v) == "yes" || string(v) == "no"
		default:
			ok = allDigits(v)
		}
		if !ok {
			return false
		}
	}
	for rest != nil {
		tok, rest, _ = bytes.Cut(rest, []byte(" "))
		name, v, ok := bytes.Cut(tok, []byte("="))
		if !ok || len(name) == 0 || len(v) == 0 || !printable(v) {
			return false
		}
		for _, c := range name {
			if (c < 'a' || c > 'z') && c != '_' {
				return false
			}
		}
	}
	return true
}

// validEncodedKey reports whether k is a key as memcached's uriencode
// writes it: unreserved bytes and %XX escapes (upper-case hex), decoding to
// 1..MaxKeyLength bytes.
func validEncodedKey(k []byte) bool {
	n := 0
	for i := 0; i < len(k); n++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
			i++
		case c == '%' && i+2 < len(k) && upperHex(k[i+1]) && upperHex(k[i+2]):
			i += 3
		default:
			return false
		}
	}
	return n >= 1 && n <= MaxKeyLength
}

func upperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func allDigits(b []byte) bool {
	if len(b) == 0 || len(b) > 20 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// printable reports whether b holds only visible ASCII and spaces, so that
// it can be passed to a client as a reply line.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
