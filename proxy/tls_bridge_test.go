package proxy

import (
	"strings"
	"testing"
)

// TestCmdScannerCuts: the bridge toward a backend cuts its writes after
// whole commands, data blocks included, and passes a command longer than
// its buffer through in pieces.
func TestCmdScannerCuts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		full bool
		want int
	}{
		{"get a\r\nget b\r\n", false, 14},
		{"get a\r\nget b", false, 7},
		{"set k 0 0 5\r\nhel", false, 0},
		{"set k 0 0 5\r\nhello\r\nget", false, 20},
		{"get a\r\nset k 0 0 5\r\nhello\r", false, 7},
		{"ms k 2 T0\r\nhi\r\nmg k v\r\n", false, 23},
		{"cas k 0 0 2 99\r\nab\r\n", false, 20},
		{"set k 0 0 100\r\n" + strings.Repeat("v", 20), true, 35},
	} {
		var s cmdScanner
		if got := s.cut([]byte(tc.in), tc.full); got != tc.want {
			t.Errorf("cut(%q, %v) = %d, want %d", tc.in, tc.full, got, tc.want)
		}
	}
	// A value past the buffer: the rest of its data block is passed as
	// it comes, and the cut after it falls where the block ends.
	var s cmdScanner
	s.cut([]byte("set k 0 0 30\r\n"+strings.Repeat("v", 10)), true)
	if got := s.cut([]byte(strings.Repeat("v", 20)+"\r\nget k\r\nget"), false); got != 29 {
		t.Errorf("after a long value: cut = %d, want 29", got)
	}
}
