package proxy

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// The quiet-mode matrix: every outcome of mg, ms, md and ma, each sent
// loud, quiet, quiet with an opaque and a key echo, and quiet with mn
// after, to a real memcached and through the proxy, compared byte for
// byte (maskMeta). memcached's rule, per command and outcome, is what the
// matrix pins; the proxy must give the same answer whatever that rule is.

// quietOutcome is one outcome of one meta command: setup brings the item
// to the state the outcome needs (loudly), cmd is the command without q
// (an ms's data block after its line), and check reads the item back.
type quietOutcome struct {
	name  string
	setup string
	cmd   string
}

const (
	quietKey     = "qk"
	quietSetup   = "ms qk 2 T0\r\n10\r\n"
	quietTextSet = "set qk 0 0 3\r\nabc\r\n"
)

var quietOutcomes = []quietOutcome{
	// mg
	{"mg hit value", quietSetup, "mg qk v"},
	{"mg hit no value", quietSetup, "mg qk"},
	{"mg hit flags", quietSetup, "mg qk s f t"},
	{"mg miss", "", "mg qk v"},
	{"mg miss no value", "", "mg qk"},
	{"mg touch hit", quietSetup, "mg qk T30 v"},
	{"mg touch miss", "", "mg qk T30 v"},
	{"mg vivify miss", "", "mg qk N30 v"},
	{"mg vivify won", "mg qk N30\r\n", "mg qk N30 v c"},
	{"mg invalid flag", quietSetup, "mg qk !"},
	{"mg bad token", quietSetup, "mg qk Tx"},
	{"mg duplicate flag", "", "mg qk v v"},
	{"mg key too long", "", "mg " + strings.Repeat("k", 251) + " v"},
	{"mg bad base64", "", "mg !!!! b v"},
	// ms
	{"ms stored", "", "ms qk 2\r\nhi"},
	{"ms stored over", quietSetup, "ms qk 2 T100 F3\r\nhi"},
	{"ms add not stored", quietSetup, "ms qk 2 ME\r\nhi"},
	{"ms add stored", "", "ms qk 2 ME\r\nhi"},
	{"ms replace not stored", "", "ms qk 2 MR\r\nhi"},
	{"ms replace stored", quietSetup, "ms qk 2 MR\r\nhi"},
	{"ms append not stored", "", "ms qk 2 MA\r\nhi"},
	{"ms append stored", quietSetup, "ms qk 2 MA\r\nhi"},
	{"ms prepend not stored", "", "ms qk 2 MP\r\nhi"},
	{"ms cas exists", quietSetup, "ms qk 2 C999999\r\nhi"},
	{"ms cas not found", "", "ms qk 2 C999999\r\nhi"},
	{"ms invalidate cas", quietSetup, "ms qk 2 I C1\r\nhi"},
	{"ms bad mode", "", "ms qk 2 Mx\r\nhi"},
	{"ms bad token", "", "ms qk 2 Tx\r\nhi"},
	{"ms bad length", "", "ms qk x\r\nhi"},
	{"ms bad data chunk", "", "ms qk 1\r\nhi"},
	{"ms too large", quietSetup, "ms qk 2097152\r\n" + strings.Repeat("z", 2<<20)},
	// md
	{"md deleted", quietSetup, "md qk"},
	{"md not found", "", "md qk"},
	{"md cas exists", quietSetup, "md qk C999999"},
	{"md cas not found", "", "md qk C999999"},
	{"md stale", quietSetup, "md qk I T30"},
	{"md stale not found", "", "md qk I T30"},
	{"md bad token", quietSetup, "md qk Tx"},
	{"md invalid flag", quietSetup, "md qk !"},
	// ma
	{"ma incremented", quietSetup, "ma qk"},
	{"ma incremented value", quietSetup, "ma qk v"},
	{"ma decremented value", quietSetup, "ma qk MD D3 v t"},
	{"ma not found", "", "ma qk v"},
	{"ma not found no value", "", "ma qk"},
	{"ma created", "", "ma qk N0 J13"},
	{"ma created value", "", "ma qk N0 J13 v"},
	{"ma created flags", "", "ma qk N30 J7 v t c"},
	{"ma created decr", "", "ma qk N0 J13 MD v"},
	{"ma vivify incremented", quietSetup, "ma qk N0 J13 v"},
	{"ma vivify incremented no value", quietSetup, "ma qk N0 J13"},
	{"ma cas exists", quietSetup, "ma qk C999999 v"},
	{"ma cas not found", "", "ma qk C999999 v"},
	{"ma cas vivify", "", "ma qk C999999 N0 J2 v"},
	{"ma non-numeric", quietTextSet, "ma qk v"},
	{"ma bad mode", quietSetup, "ma qk Mx"},
	{"ma bad delta", quietSetup, "ma qk Dx"},
	{"ma bad initial", "", "ma qk N0 Jx"},
	{"ma invalid flag", quietSetup, "ma qk !"},
}

// quietVariants turns an outcome's command into the streams of the matrix.
// Each stream ends with an mn and a loud read of the item, so that a
// hidden reply, a shifted one and the item's state all show.
var quietVariants = []struct {
	name string
	make func(line, data string) string
}{
	{"loud", func(line, data string) string { return line + "\r\n" + data }},
	{"quiet", func(line, data string) string { return line + " q\r\n" + data }},
	{"quiet opaque key", func(line, data string) string { return line + " q O77 k\r\n" + data }},
	{"quiet first", func(line, data string) string { return withFlagsFirst(line, "q O5") + "\r\n" + data }},
	{"quiet twice mn", func(line, data string) string {
		return line + " q O1\r\n" + data + "mn\r\n" + line + " q O2\r\n" + data
	}},
}

// withFlagsFirst puts flags right after the key (and ms's length), ahead of
// the command's own flags.
func withFlagsFirst(line, flags string) string {
	f := strings.Fields(line)
	n := 2
	if f[0] == "ms" {
		n = 3
	}
	if len(f) < n {
		return line + " " + flags
	}
	return strings.Join(append(append(append([]string{}, f[:n]...), flags), f[n:]...), " ")
}

// quietMatrixCases builds the matrix: every outcome in every variant.
func quietMatrixCases() []differentialCase {
	var cases []differentialCase
	for _, o := range quietOutcomes {
		line, data, _ := strings.Cut(o.cmd, "\r\n")
		if data != "" || strings.HasPrefix(line, "ms ") {
			data += "\r\n"
		}
		for _, v := range quietVariants {
			in := o.setup + v.make(line, data) + "mn\r\nmg " + quietKey + " v\r\nmn\r\n"
			cases = append(cases, differentialCase{o.name + "/" + v.name, in})
		}
	}
	return cases
}

// quietAcrossBackends are quiet runs whose keys live on different backends
// of the proxy, hits and misses mixed, ended by mn: the MN must come after
// every reply memcached shows, in the client's order.
var quietAcrossBackends = []differentialCase{
	{"quiet gets across backends", setKeys(0, 12, 2) +
		quietRun(0, 12, "mg k%d v q k") + "mn\r\n" + quietRun(0, 12, "mg k%d q O%d") + "mn\r\n"},
	{"quiet writes across backends", setKeys(0, 12, 3) +
		quietRun(0, 12, "md k%d q O%d") + "mn\r\n" + quietRun(0, 12, "ma k%d q N0 J%d v") + "mn\r\n" +
		quietRun(0, 12, "ma k%d q N0 J%d v") + "mn\r\nmg k1 v\r\nmg k2 v\r\n"},
	{"quiet mixed with loud", setKeys(0, 6, 2) +
		"mg k0 v q\r\nmg k1 v q\r\nmg k1 v\r\nma k1 q N0\r\nma k2 q N0 v\r\nget k0 k1 k2\r\nmd k2 q\r\nmd k2 q\r\nmn\r\nmn\r\n"},
	{"quiet create base64 key echo", "ma cXE= b q N0 J3 v k\r\nma cXE= b q N0 J3 v k\r\nmn\r\nmg qq v\r\n"},
}

// setKeys stores k<from>..k<to-1> for every step-th key, loudly.
func setKeys(from, to, step int) string {
	var b strings.Builder
	for i := from; i < to; i += step {
		b.WriteString(strings.NewReplacer("%d", strconv.Itoa(i)).Replace("ms k%d 1\r\nx\r\n"))
	}
	return b.String()
}

// quietRun writes format for each key from..to-1, %d standing for the key's
// number (twice, the second an opaque or a number).
func quietRun(from, to int, format string) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(strings.ReplaceAll(format, "%d", strconv.Itoa(i)) + "\r\n")
	}
	return b.String()
}

// TestMetaQuietMatrixMatchesMemcached sends the quiet-mode matrix to
// memcached and through the proxy over three backends.
func TestMetaQuietMatrixMatchesMemcached(t *testing.T) {
	matchCases(t, append(quietMatrixCases(), quietAcrossBackends...), maskMeta)
}

// TestMetaQuietFencedFollowsBackend: a quiet ma with N goes to its backend
// with its q and an mn after it, and the client sees what that backend
// shows. The fake answers as memcached 1.6.40 does, hiding every success
// of a quiet ma, creation included (1.6.18, in the matrix above, shows a
// creation); the proxy hides what it hid and shows what it showed.
func TestMetaQuietFencedFollowsBackend(t *testing.T) {
	var lines []string
	var mu sync.Mutex
	fake := startFake(t, func(_ int, f []string, _ []byte) string {
		mu.Lock()
		lines = append(lines, strings.Join(f, " "))
		mu.Unlock()
		switch {
		case f[0] == "mn":
			return "MN\r\n"
		case f[0] == "ma" && f[1] == "shown":
			return "VA 1" + echoOpaque(f) + "\r\n7\r\n"
		case f[0] == "ma" && f[1] == "refused":
			return "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
		case f[0] == "ma" && !slices.Contains(f, "q"):
			return "HD" + echoOpaque(f) + "\r\n"
		case f[0] == "ma":
			return "" // hidden, as 1.6.40 hides a quiet creation
		}
		return honest(f)
	})
	tp := fakeProxy(t, fake, 0, nil)
	c := memcachedtest.Dial(t, tp.addr)
	got := memcachedtest.RoundTrip(t, c, "ma hidden N0 J5 q Oc1\r\nma shown N0 q v Oc2\r\nma refused N0 q\r\nma loud N0\r\nma plain q\r\nmn\r\n", "MN\r\n", 1)
	if want := "VA 1 Oc2\r\n7\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nHD\r\nMN\r\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	// Each fenced ma went with its q, the proxy's opaque in place of the
	// client's, and an mn; the loud ones and the ma without N went loud.
	var fenced, loud int
	for i, l := range lines {
		f := strings.Fields(l)
		if f[0] != "ma" {
			continue
		}
		switch {
		case slices.Contains(f, "q") && slices.Contains(f, "N0"):
			fenced++
			if i+1 >= len(lines) || lines[i+1] != "mn" || slices.Contains(f, "Oc1") || slices.Contains(f, "Oc2") {
				t.Errorf("fenced line %q, then %q", l, lines[min(i+1, len(lines)-1)])
			}
		case !slices.Contains(f, "q"):
			loud++
		default:
			t.Errorf("quiet line without N sent with its q: %q", l)
		}
	}
	if fenced != 3 || loud != 2 {
		t.Errorf("%d fenced and %d loud ma lines, want 3 and 2: %q", fenced, loud, lines)
	}
	// A hidden fenced reply is a success, counted as memcached counts an
	// increment.
	if v := commandsMetric(t, tp, "ma", "hit"); v != 4 {
		t.Errorf("mcproxy_commands_total{command=ma,result=hit} %v, want 4", v)
	}
}

// echoOpaque returns the " O<token>" of a meta line's fields, or "".
func echoOpaque(f []string) string {
	for _, tok := range f[2:] {
		if strings.HasPrefix(tok, "O") {
			return " " + tok
		}
	}
	return ""
}

// TestMetaQuietFenceOutOfStep: a backend that answers a fenced ma with
// a reply and then anything but MN is out of step: its connection is
// closed and the client gets SERVER_ERROR, never a shifted reply.
func TestMetaQuietFenceOutOfStep(t *testing.T) {
	for _, tc := range []struct{ name, lie string }{
		{"no MN after the reply", "HD%s\r\nHD\r\n"},
		{"a second reply", "HD%s\r\nHD%s\r\nMN\r\n"},
		{"MN with a flag", "HD%s\r\nMN O1\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := startFake(t, func(_ int, f []string, _ []byte) string {
				switch f[0] {
				case "mn":
					return "" // the lie answers for it
				case "ma":
					return strings.ReplaceAll(tc.lie, "%s", echoOpaque(f))
				}
				return honest(f)
			})
			tp := fakeProxy(t, fake, 0, nil)
			c := memcachedtest.Dial(t, tp.addr)
			got := memcachedtest.RoundTrip(t, c, "ma k N0 q\r\nmn\r\n", "MN\r\n", 1)
			if want := "SERVER_ERROR backend protocol error\r\nMN\r\n"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}
