package loadgen

import "testing"

func TestValueRoundTrip(t *testing.T) {
	v := AppendValue(nil, "fo:12", 345, 100)
	if len(v) != 100 {
		t.Fatalf("value length %d, want 100", len(v))
	}
	if got, ok := ParseValue([]byte("fo:12"), v); !ok || got != 345 {
		t.Errorf("ParseValue = %d, %v; want 345, true", got, ok)
	}
	if _, ok := ParseValue([]byte("fo:1"), v); ok {
		t.Errorf("value of fo:12 accepted for fo:1")
	}
	if v := AppendValue(nil, []byte("a-long-key"), 7, 4); string(v) != "a-lo" {
		t.Errorf("value cut to 4 bytes = %q, want the key's first 4", v)
	}
}
