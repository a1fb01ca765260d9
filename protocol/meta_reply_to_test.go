package protocol

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReadReplyToMeta: a backend's meta reply is checked against the line
// the proxy sent (opaque, k echo with a base64 key, VA exactly for v)
// before VA's data is read, and an answer to another command is refused.
func TestReadReplyToMetaChecks(t *testing.T) {
	cases := []struct {
		op    Op
		cmd   string
		reply string
		ok    bool
	}{
		{OpMetaGet, "mg foo v O7\r\n", "VA 3 O7\r\nbar\r\n", true},
		{OpMetaGet, "mg foo v O7\r\n", "EN\r\n", false}, // the opaque is missing
		{OpMetaGet, "mg foo v O7\r\n", "VA 3 O8\r\nbar\r\n", false},
		{OpMetaGet, "mg foo O7\r\n", "VA 3 O7\r\nbar\r\n", false}, // no v asked
		{OpMetaGet, "mg foo v O7\r\n", "HD O7\r\n", false},
		{OpMetaGet, "mg Zm9v b k v O1\r\n", "VA 1 O1 kZm9v b\r\nx\r\n", true},
		{OpMetaGet, "mg Zm9v b k v O1\r\n", "VA 1 O1 kYmFy b\r\nx\r\n", false}, // another key
		{OpMetaGet, "mg foo k O1\r\n", "EN O1 kfoo\r\n", true},
		// memcached echoes the raw bytes of a key an N created, spaces
		// and all (the key " " here), even when it was sent in base64.
		{OpMetaGet, "mg IA== b k N30 O1\r\n", "HD k  O1 W\r\n", true},
		{OpMetaGet, "mg IA== b k N30 O1\r\n", "HD kIA== b O1 W\r\n", true},
		{OpMetaGet, "mg IA== b k N30 O1\r\n", "HD k O1 W\r\n", false},
		{OpMetaGet, "mg ICA= b k O1\r\n", "HD k   O1\r\n", true},
		{OpMetaGet, "mg foo O1\r\n", "SERVER_ERROR out of memory\r\n", true},
		{OpMetaSet, "ms foo 2 T0 O9\r\nhi\r\n", "HD O9\r\n", true},
		{OpMetaSet, "ms foo 2 T0 O9\r\nhi\r\n", "EN O9\r\n", false},
		{OpMetaDelete, "md foo q O3\r\n", "NF O3\r\n", true},
		{OpMetaArithmetic, "ma n v O3\r\n", "VA 2 O3\r\n10\r\n", true},
		{OpMetaArithmetic, "ma n O3\r\n", "MN\r\n", false},
		{OpMetaNoop, "mn\r\n", "MN\r\n", true},
		{OpMetaDebug, "me foo\r\n", "EN\r\n", true},
		{OpMetaDebug, "me foo\r\n", "ME foo exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n", true},
		{OpMetaDebug, "me foo\r\n", "HD\r\n", false},
	}
	for _, c := range cases {
		var r Reply
		err := NewReplyReader(strings.NewReader(c.reply), 0).ReadReplyTo(c.op, []byte(c.cmd), &r)
		if (err == nil) != c.ok {
			t.Errorf("%q to %q: error %v, want ok=%v", c.reply, c.cmd, err, c.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrBadReply) {
			t.Errorf("%q to %q: %v is not ErrBadReply", c.reply, c.cmd, err)
		}
		if err == nil && string(r.Raw) != c.reply {
			t.Errorf("%q to %q: kept %q", c.reply, c.cmd, r.Raw)
		}
	}
}

// TestMetaReplyBudget: a VA reply is charged from its header, line and
// block at once; refused, its block is read and thrown away and the next
// reply is read in step.
func TestMetaReplyBudget(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	stream := "VA 102400 O1\r\n" + big + "\r\nHD O2\r\n"
	b := &budget{limit: 1 << 20}
	r := Reply{Budget: b}
	rr := NewReplyReader(oneByteReader{strings.NewReader(stream)}, 0)
	if err := rr.ReadReplyTo(OpMetaGet, []byte("mg a v O1\r\n"), &r); err != nil {
		t.Fatal(err)
	}
	if r.Dropped || string(r.MetaValue()) != big || b.granted < len(r.Raw) {
		t.Fatalf("dropped %v, value of %d bytes, %d charged for %d", r.Dropped, len(r.MetaValue()), b.granted, len(r.Raw))
	}
	if b.granted != cap(r.Raw) {
		t.Fatalf("charged %d for a reply holding %d bytes of memory", b.granted, cap(r.Raw))
	}

	b = &budget{limit: 1000}
	r = Reply{Budget: b}
	rr = NewReplyReader(strings.NewReader(stream), 0)
	if err := rr.ReadReplyTo(OpMetaGet, []byte("mg a v O1\r\n"), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Dropped || b.refused == 0 || len(r.Raw) != 0 {
		t.Fatalf("over budget: dropped %v, refused %d, kept %d bytes", r.Dropped, b.refused, len(r.Raw))
	}
	r = Reply{Budget: b}
	if err := rr.ReadReplyTo(OpMetaSet, []byte("ms a 1 O2\r\nx\r\n"), &r); err != nil || string(r.Raw) != "HD O2\r\n" {
		t.Fatalf("next reply: %q, %v", r.Raw, err)
	}
}

// TestAppendMetaReplyHeader: the proxy's opaque is taken out, or the
// client's put back, on the status line only; the block follows as is.
func TestAppendMetaReplyHeader(t *testing.T) {
	for _, c := range []struct {
		reply, opaque, want string
		has                 bool
	}{
		{"VA 3 O17 t-1\r\nbar\r\n", "", "VA 3 t-1\r\n", false},
		{"VA 3 O17 t-1\r\nbar\r\n", "abc", "VA 3 Oabc t-1\r\n", true},
		{"HD O17\r\n", "", "HD\r\n", false},
		{"HD k1 O17\r\n", "x", "HD k1 Ox\r\n", true},
		{"CLIENT_ERROR bad data chunk\r\n", "", "CLIENT_ERROR bad data chunk\r\n", false},
	} {
		var r Reply
		if err := NewReplyReader(strings.NewReader(c.reply), 0).ReadReply(ReplyMeta, &r); err != nil {
			t.Fatal(err)
		}
		got := string(AppendMetaReplyHeader(nil, &r, c.has, []byte(c.opaque)))
		if got != c.want {
			t.Errorf("%q: header %q, want %q", c.reply, got, c.want)
		}
		if whole := string(AppendMetaReply(nil, &r, c.has, []byte(c.opaque))); whole != got+string(r.MetaBlock()) {
			t.Errorf("%q: whole %q, header and block %q", c.reply, whole, got+string(r.MetaBlock()))
		}
	}
}

// TestReadReplyToMetaAllocs: checking a meta reply allocates nothing.
func TestReadReplyToMetaAllocs(t *testing.T) {
	checkReplyToAllocs(t, OpMetaGet, []byte("mg Zm9v b v k O12\r\n"), strings.Repeat("VA 3 O12 kZm9v b\r\nbar\r\n", 100))
}

// TestReadReplyToMetaRefusesBeforeTheData: a VA that does not answer its
// command is refused on its header; its data is not waited for.
func TestReadReplyToMetaRefusesBeforeTheData(t *testing.T) {
	var r Reply
	err := NewReplyReader(strings.NewReader("VA 1000 O2\r\n"), 0).ReadReplyTo(OpMetaGet, []byte("mg a v O1\r\n"), &r)
	if !errors.Is(err, ErrBadReply) {
		t.Fatalf("got %v, want ErrBadReply before the data", err)
	}
}

// TestReadReplyToMetaFenced: the answer to a fenced request (sent with q
// and an mn after it) is the reply memcached showed and the MN, or the MN
// alone when memcached hid the reply; the MN after a reply is read and not
// kept. However the bytes arrive, each answer ends where it should, and
// anything else than MN after the reply is refused.
func TestReadReplyToMetaFenced(t *testing.T) {
	const cmd = "ma n N0 q v O4\r\nmn\r\n"
	cases := []struct {
		answer, kept string
		ok           bool
	}{
		{"VA 2 O4\r\n13\r\nMN\r\n", "VA 2 O4\r\n13\r\n", true},
		{"MN\r\n", "MN\r\n", true},
		{"NF O4\r\nMN\r\n", "NF O4\r\n", true},
		{"CLIENT_ERROR bad command line format\r\nMN\r\n", "CLIENT_ERROR bad command line format\r\n", true},
		{"VA 2 O4\r\n13\r\nVA 2 O4\r\n13\r\nMN\r\n", "", false}, // two replies
		{"VA 2 O4\r\n13\r\nHD\r\n", "", false},
		{"VA 2 O4\r\n13\r\nMN O4\r\n", "", false},
		{"VA 2 O5\r\n13\r\nMN\r\n", "", false}, // another request's
		{"HD O4\r\nMN\r\n", "", false},         // v was asked
	}
	readers := map[string]func(string) io.Reader{
		"whole":   func(s string) io.Reader { return strings.NewReader(s) },
		"bytes":   func(s string) io.Reader { return oneByteReader{strings.NewReader(s)} },
		"stutter": func(s string) io.Reader { return newStutterReader(strings.NewReader(s)) },
	}
	for name, rd := range readers {
		for _, c := range cases {
			// Each answer twice, then the answer to a plain mn: the
			// reader stays in step or refuses.
			rr := NewReplyReader(rd(c.answer+c.answer+"MN\r\n"), 0)
			var r Reply
			for i := 0; i < 2; i++ {
				err := retry(func() error { return rr.ReadReplyTo(OpMetaArithmetic, []byte(cmd), &r) })
				if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrBadReply) {
					t.Fatalf("%s: %q: error %v, want ok=%v", name, c.answer, err, c.ok)
				}
				if err != nil {
					break
				}
				if string(r.Raw) != c.kept {
					t.Fatalf("%s: %q: kept %q, want %q", name, c.answer, r.Raw, c.kept)
				}
			}
			if !c.ok {
				continue
			}
			err := retry(func() error { return rr.ReadReplyTo(OpMetaNoop, []byte("mn\r\n"), &r) })
			if err != nil || string(r.Raw) != "MN\r\n" || rr.Buffered() != 0 {
				t.Fatalf("%s: %q: then %q, %v", name, c.answer, r.Raw, err)
			}
		}
	}
	// Not fenced (no mn after the line), an MN is no answer to an ma.
	var r Reply
	err := NewReplyReader(strings.NewReader("MN\r\n"), 0).ReadReplyTo(OpMetaArithmetic, []byte("ma n N0 q v O4\r\n"), &r)
	if !errors.Is(err, ErrBadReply) {
		t.Fatalf("MN to an ma not fenced: %v", err)
	}
}
