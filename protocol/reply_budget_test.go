package protocol

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// budget grants up to limit bytes and records what it was asked for.
type budget struct {
	limit, granted, refused int
}

func (b *budget) Charge(n int) bool {
	if b.granted+n > b.limit {
		b.refused++
		return false
	}
	b.granted += n
	return true
}

// TestReplyBudgetCharged: with a budget that grants everything the reply is
// read exactly as without one, and the budget is charged for the memory the
// reply holds (its whole capacity once grown), taken once per value.
func TestReplyBudgetCharged(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	stream := "VALUE a 0 3\r\nabc\r\nVALUE b 0 " + strconv.Itoa(len(big)) + "\r\n" + big + "\r\nEND\r\n" +
		"STAT pid 1\r\nEND\r\n"
	for _, chunked := range []bool{false, true} {
		rr := NewReplyReader(strings.NewReader(stream), 0)
		if chunked {
			rr = NewReplyReader(oneByteReader{strings.NewReader(stream)}, 0)
		}
		b := &budget{limit: 1 << 30}
		r := Reply{Budget: b}
		if err := rr.ReadReply(ReplyRetrieval, &r); err != nil {
			t.Fatal(err)
		}
		if r.Dropped || len(r.Values) != 2 || string(r.Block(1)) != "VALUE b 0 "+strconv.Itoa(len(big))+"\r\n"+big+"\r\n" {
			t.Fatalf("dropped %v, values %+v", r.Dropped, r.Values)
		}
		if b.granted != cap(r.Raw) {
			t.Fatalf("charged %d for a reply holding %d bytes of memory", b.granted, cap(r.Raw))
		}
		if cap(r.Raw) > 2*len(r.Raw) {
			t.Fatalf("reply of %d bytes holds %d", len(r.Raw), cap(r.Raw))
		}
		if err := rr.ReadReply(ReplyStats, &r); err != nil || string(r.Raw) != "STAT pid 1\r\nEND\r\n" {
			t.Fatalf("next reply %q, %v", r.Raw, err)
		}
		if r.Budget != b {
			t.Fatal("Reset dropped the budget")
		}
	}
}

// TestReplyBudgetRefusedDiscards: once the budget refuses, the rest of the
// reply is read and thrown away, the reply is marked Dropped, and the
// connection stays in step for the next reply.
func TestReplyBudgetRefusedDiscards(t *testing.T) {
	big := strings.Repeat("y", 100<<10)
	one := "VALUE k 0 " + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n"
	stream := "VALUE s 0 1\r\nz\r\n" + one + one + "END\r\n" + "STORED\r\n"
	for _, limit := range []int{0, 150 << 10} {
		for _, chunked := range []bool{false, true} {
			rr := NewReplyReader(strings.NewReader(stream), 0)
			if chunked {
				rr = NewReplyReader(oneByteReader{strings.NewReader(stream)}, 0)
			}
			b := &budget{limit: limit}
			r := Reply{Raw: make([]byte, 0, 64), Budget: b}
			if err := rr.ReadReply(ReplyRetrieval, &r); err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			if !r.Dropped || b.refused == 0 || b.granted > limit {
				t.Fatalf("limit %d: dropped %v, granted %d, refused %d", limit, r.Dropped, b.granted, b.refused)
			}
			if cap(r.Raw) > 64 && cap(r.Raw) > b.granted {
				t.Fatalf("limit %d: reply holds %d bytes, %d charged", limit, cap(r.Raw), b.granted)
			}
			if err := rr.ReadReply(ReplyLine, &r); err != nil || string(r.Raw) != "STORED\r\n" || r.Dropped {
				t.Fatalf("limit %d: after a dropped reply: %q, dropped %v, %v", limit, r.Raw, r.Dropped, err)
			}
		}
	}
}

// TestReplyBudgetDroppedStillStrict: a dropped value is still checked for
// its CRLF, and an error line after a dropped value is not taken for a
// whole reply.
func TestReplyBudgetDroppedStillStrict(t *testing.T) {
	for _, in := range []string{
		"VALUE a 0 3\r\nabcd\r\nEND\r\n",
		"VALUE a 0 3\r\nabc\r\nSERVER_ERROR x\r\n",
	} {
		rr := NewReplyReader(oneByteReader{strings.NewReader(in)}, 0)
		r := Reply{Budget: &budget{}}
		if err := rr.ReadReply(ReplyRetrieval, &r); !errors.Is(err, ErrBadReply) {
			t.Errorf("%q: got %v, want ErrBadReply", in, err)
		}
	}
}

// TestReplyBudgetChargesOneValueOnce: a large value read into a reply whose
// buffer came from a pool (roomy but too small for it) is charged for
// about its size, not for twice the old buffer: the output limit's bound
// (a window of values of at most max_item_size) depends on it.
func TestReplyBudgetChargesOneValueOnce(t *testing.T) {
	value := strings.Repeat("v", 40<<10)
	stream := "VALUE k 0 " + strconv.Itoa(len(value)) + "\r\n" + value + "\r\nEND\r\n"
	b := &budget{limit: 1 << 30}
	r := Reply{Budget: b, Raw: make([]byte, 0, 32<<10)} // a pooled buffer
	if err := NewReplyReader(strings.NewReader(stream), 0).ReadReply(ReplyRetrieval, &r); err != nil {
		t.Fatal(err)
	}
	if string(r.Raw) != stream {
		t.Fatalf("reply %d bytes, want %d", len(r.Raw), len(stream))
	}
	if b.granted > len(stream)+len("END\r\n") {
		t.Fatalf("charged %d bytes for a reply of %d", b.granted, len(stream))
	}
}

// TestReplyBudgetManyValuesWithinMaxCapacity: a reply of many values, large
// and small, is never charged more than MaxReplyCapacity of its size, the
// figure the proxy's output window counts each value at. Doubling the
// buffer charged a reply of five large values for eight.
func TestReplyBudgetManyValuesWithinMaxCapacity(t *testing.T) {
	for _, size := range []int{10, 1000, 64 << 10, 190 << 10} {
		for _, n := range []int{1, 2, 3, 5, 9, 17, 40} {
			var stream strings.Builder
			value := strings.Repeat("v", size)
			for i := 0; i < n; i++ {
				stream.WriteString("VALUE k" + strconv.Itoa(i) + " 0 " + strconv.Itoa(size) + "\r\n" + value + "\r\n")
			}
			stream.WriteString("END\r\n")
			b := &budget{limit: 1 << 30}
			r := Reply{Budget: b}
			if err := NewReplyReader(strings.NewReader(stream.String()), 0).ReadReply(ReplyRetrieval, &r); err != nil {
				t.Fatal(err)
			}
			if string(r.Raw) != stream.String() {
				t.Fatalf("%d values of %d: reply differs", n, size)
			}
			if limit := MaxReplyCapacity(stream.Len()); b.granted > limit || cap(r.Raw) > limit {
				t.Errorf("%d values of %d bytes: charged %d, capacity %d, for a reply of %d (bound %d)",
					n, size, b.granted, cap(r.Raw), stream.Len(), limit)
			}
		}
	}
}
