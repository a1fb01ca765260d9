package resolve

import (
	"strings"
	"testing"
)

func TestSpellingsOfOneServer(t *testing.T) {
	s, errs := Lookup([]string{"127.0.0.1:11311", "localhost:11311", "[::ffff:127.0.0.1]:11311",
		"127.0.0.1:11312", "127.0.0.2:11311", "nohost.invalid:11311", "bad"})
	for i, want := range []bool{true, true, true, false, false} {
		if got := Same(s[0], s[i]); got != want {
			t.Errorf("Same(%v, %v) = %v, want %v", s[0], s[i], got, want)
		}
	}
	if s[5] != nil || errs[5] == nil || Same(s[5], s[5]) {
		t.Errorf("an unknown host resolved: %v %v", s[5], errs[5])
	}
	if errs[6] == nil || !strings.Contains(errs[6].Error(), "missing port") {
		t.Errorf("not host:port: %v", errs[6])
	}
}
