package discover

import (
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const srvName = "_memcache._tcp.mc.test."

// harness is a Watcher against the test DNS server whose lookups the test
// steps by hand, so "after exactly n answers" is observable without sleeps.
type harness struct {
	t       *testing.T
	dns     *dnsServer
	w       *Watcher
	tick    chan time.Time
	mu      sync.Mutex
	changes [][]Backend
	logs    *observer.ObservedLogs
}

func newHarness(t *testing.T, dns *dnsServer, spec Spec, maxRemove func(int) int) *harness {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	h := &harness{t: t, dns: dns, tick: make(chan time.Time), logs: logs}
	spec.Resolver = dns.addr()
	w, err := New(Options{Spec: spec, MaxRemove: maxRemove, Logger: zap.New(core), OnChange: func(b []Backend) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.changes = append(h.changes, b)
	}})
	if err != nil {
		t.Fatal(err)
	}
	w.tick = h.tick
	h.w = w
	w.Start()
	t.Cleanup(w.Stop)
	memcachedtest.WaitFor(t, "the first lookup", func() bool { return w.Counts().Lookups >= 1 })
	return h
}

// step makes the Watcher look up once more and waits until it has applied
// the answer.
func (h *harness) step() {
	h.t.Helper()
	n := h.w.Counts().Lookups
	h.tick <- time.Now()
	memcachedtest.WaitFor(h.t, "a lookup", func() bool { return h.w.Counts().Lookups > n })
}

func (h *harness) nChanges() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.changes)
}

// names is the Watcher's list as name=addr/weight, comma separated.
func (h *harness) names() string {
	var s []string
	for _, b := range h.w.Backends() {
		s = append(s, b.Name+"="+b.Addr+"/"+strconv.Itoa(b.Weight))
	}
	return strings.Join(s, ",")
}

func srvs(targets ...string) answer {
	var a answer
	for _, t := range targets {
		a.srv = append(a.srv, net.SRV{Target: t + ".mc.test.", Port: 11211, Weight: 0})
	}
	return a
}

func (h *harness) expect(want string) {
	h.t.Helper()
	if got := h.names(); got != want {
		h.t.Fatalf("backends %q, want %q", got, want)
	}
}

func TestSRVTargetsJoinAtOnce(t *testing.T) {
	dns := startDNS(t)
	a := srvs("mc-0", "mc-1")
	a.srv[1].Weight = 3
	dns.set(srvName, a)
	h := newHarness(t, dns, Spec{SRV: srvName}, nil)
	h.expect("mc-0.mc.test=mc-0.mc.test:11211/1,mc-1.mc.test=mc-1.mc.test:11211/3")
	if h.nChanges() != 1 {
		t.Fatalf("%d changes delivered, want 1", h.nChanges())
	}
	a.srv = append(a.srv, net.SRV{Target: "mc-2.mc.test.", Port: 11211, Weight: 1})
	dns.set(srvName, a)
	h.step()
	h.expect("mc-0.mc.test=mc-0.mc.test:11211/1,mc-1.mc.test=mc-1.mc.test:11211/3,mc-2.mc.test=mc-2.mc.test:11211/1")
	h.step() // the same answer again delivers nothing
	if h.nChanges() != 2 {
		t.Fatalf("%d changes delivered, want 2", h.nChanges())
	}
}

func TestSRVTargetOnNewAddressKeepsItsName(t *testing.T) {
	dns := startDNS(t)
	dns.set(srvName, srvs("mc-0", "mc-1"))
	h := newHarness(t, dns, Spec{SRV: srvName}, nil)
	a := srvs("mc-0", "mc-1")
	a.srv[1].Port = 11300 // mc-1 restarted elsewhere
	dns.set(srvName, a)
	h.step()
	h.expect("mc-0.mc.test=mc-0.mc.test:11211/1,mc-1.mc.test=mc-1.mc.test:11300/1")
}

func TestTargetLeavesAfterMissingLimitAnswers(t *testing.T) {
	dns := startDNS(t)
	dns.set(srvName, srvs("mc-0", "mc-1", "mc-2"))
	h := newHarness(t, dns, Spec{SRV: srvName, MissingLimit: 3}, nil)
	all := "mc-0.mc.test=mc-0.mc.test:11211/1,mc-1.mc.test=mc-1.mc.test:11211/1,mc-2.mc.test=mc-2.mc.test:11211/1"
	// Missing twice, then back: the count starts over.
	dns.set(srvName, srvs("mc-0", "mc-1"))
	h.step()
	h.step()
	h.expect(all)
	dns.set(srvName, srvs("mc-0", "mc-1", "mc-2"))
	h.step()
	dns.set(srvName, srvs("mc-0", "mc-1"))
	h.step()
	h.step()
	h.expect(all)
	h.step()
	h.expect("mc-0.mc.test=mc-0.mc.test:11211/1,mc-1.mc.test=mc-1.mc.test:11211/1")
	if h.nChanges() != 2 {
		t.Fatalf("%d changes delivered, want 2", h.nChanges())
	}
}

func TestBadAnswersChangeNothing(t *testing.T) {
	dns := startDNS(t)
	dns.set(srvName, srvs("mc-0", "mc-1"))
	h := newHarness(t, dns, Spec{SRV: srvName, MissingLimit: 1, LookupTimeout: 200 * time.Millisecond}, nil)
	want := "mc-0.mc.test=mc-0.mc.test:11211/1,mc-1.mc.test=mc-1.mc.test:11211/1"
	for _, c := range []struct {
		name        string
		set         func()
		fail, empty uint64
	}{
		{"SERVFAIL", func() { dns.set(srvName, answer{mode: "servfail"}) }, 1, 0},
		{"timeout", func() { dns.set(srvName, answer{mode: "drop"}) }, 1, 0},
		{"no records", func() { dns.set(srvName, answer{mode: "empty"}) }, 0, 1},
		{"NXDOMAIN", func() {
			dns.mu.Lock()
			delete(dns.table, srvName)
			dns.mu.Unlock()
		}, 0, 1},
	} {
		c.set()
		before := h.w.Counts()
		h.step()
		h.step()
		after := h.w.Counts()
		if got := after.Failures - before.Failures; got != 2*c.fail {
			t.Errorf("%s: %d more failures, want %d", c.name, got, 2*c.fail)
		}
		if got := after.Empty - before.Empty; got != 2*c.empty {
			t.Errorf("%s: %d more empty answers, want %d", c.name, got, 2*c.empty)
		}
		h.expect(want)
	}
	if h.nChanges() != 1 {
		t.Fatalf("%d changes delivered, want 1", h.nChanges())
	}
	// Two streaks (no answer; an answer without records), one line each.
	if n := h.logs.FilterLevelExact(zap.WarnLevel).Len(); n != 2 {
		t.Errorf("%d warnings for two streaks of bad lookups, want 2: %v", n, h.logs.All())
	}
	// Bad lookups did not count as answers lacking anybody: with
	// MissingLimit 1, one good answer without mc-1 removes it.
	dns.set(srvName, srvs("mc-0"))
	h.step()
	h.expect("mc-0.mc.test=mc-0.mc.test:11211/1")
}

// TestRemovalCap: the cap counts over the streak of removals against the
// list before it (5), not against each answer's list: with a cap of 1 only
// one of the three missing leaves, however many answers lack them. A
// target back in an answer ends the streak; ResetRemovals does too.
func TestRemovalCap(t *testing.T) {
	dns := startDNS(t)
	dns.set(srvName, srvs("mc-0", "mc-1", "mc-2", "mc-3", "mc-4"))
	var totals []int
	h := newHarness(t, dns, Spec{SRV: srvName, MissingLimit: 2}, func(total int) int {
		totals = append(totals, total) // on the watcher's goroutine only
		return 1
	})
	dns.set(srvName, srvs("mc-0", "mc-1"))
	h.step()
	h.step() // three have missed two answers; one leaves
	four := "mc-0.mc.test=mc-0.mc.test:11211/1,mc-1.mc.test=mc-1.mc.test:11211/1," +
		"mc-3.mc.test=mc-3.mc.test:11211/1,mc-4.mc.test=mc-4.mc.test:11211/1"
	h.expect(four)
	if c := h.w.Counts().Capped; c != 2 {
		t.Fatalf("capped %d, want 2", c)
	}
	h.step()
	h.step()
	h.expect(four) // the streak has used the cap
	dns.set(srvName, srvs("mc-0", "mc-1", "mc-2"))
	h.step() // mc-2 is back: the streak ends, and a new one takes mc-3
	h.expect("mc-0.mc.test=mc-0.mc.test:11211/1,mc-1.mc.test=mc-1.mc.test:11211/1," +
		"mc-2.mc.test=mc-2.mc.test:11211/1,mc-4.mc.test=mc-4.mc.test:11211/1")
	h.w.ResetRemovals()
	h.step() // without the reset mc-4 would stay: the new streak has used the cap
	h.expect("mc-0.mc.test=mc-0.mc.test:11211/1,mc-1.mc.test=mc-1.mc.test:11211/1,mc-2.mc.test=mc-2.mc.test:11211/1")
	h.w.Stop()
	if want := []int{0, 5, 5, 5, 5, 4, 4}; !reflect.DeepEqual(totals, want) {
		t.Fatalf("MaxRemove saw totals %v, want %v", totals, want)
	}
}

func TestHostRecordsEveryInterval(t *testing.T) {
	dns := startDNS(t)
	const host = "mc.test."
	dns.set(host, answer{a: []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")}})
	w, err := New(Options{Spec: Spec{Host: host, Port: 11211, Interval: 20 * time.Millisecond,
		Resolver: dns.addr(), MissingLimit: 1}})
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	defer w.Stop()
	backends := func() string {
		var s []string
		for _, b := range w.Backends() {
			if b.Name != b.Addr || b.Weight != 1 {
				t.Errorf("backend %+v: want Name = Addr, Weight 1", b)
			}
			s = append(s, b.Name)
		}
		return strings.Join(s, ",")
	}
	memcachedtest.WaitFor(t, "both addresses", func() bool { return backends() == "127.0.0.1:11211,127.0.0.2:11211" })
	dns.set(host, answer{a: []netip.Addr{netip.MustParseAddr("127.0.0.3")}})
	memcachedtest.WaitFor(t, "the new address alone", func() bool { return backends() == "127.0.0.3:11211" })
}

func TestStopBeforeStart(t *testing.T) {
	w, err := New(Options{Spec: Spec{Host: "mc.test.", Port: 1}})
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	w.Start() // does nothing after Stop
	w.Stop()
}

// An SRV target with an A record is dialed at that address, under its name:
// the proxy readdresses it when the address changes.
func TestSRVTargetsResolvedByTheSameResolver(t *testing.T) {
	dns := startDNS(t)
	dns.set(srvName, srvs("mc-0", "mc-1"))
	dns.set("mc-0.mc.test.", answer{a: []netip.Addr{netip.MustParseAddr("127.0.0.9"), netip.MustParseAddr("127.0.0.7")}})
	h := newHarness(t, dns, Spec{SRV: srvName}, nil)
	h.expect("mc-0.mc.test=127.0.0.7:11211/1,mc-1.mc.test=mc-1.mc.test:11211/1")
	if h.w.Counts().LastSuccess.IsZero() {
		t.Fatal("no last success time after a good answer")
	}
	dns.set("mc-0.mc.test.", answer{a: []netip.Addr{netip.MustParseAddr("127.0.0.8")}})
	h.step()
	h.expect("mc-0.mc.test=127.0.0.8:11211/1,mc-1.mc.test=mc-1.mc.test:11211/1")
	dns.set("mc-0.mc.test.", answer{mode: "servfail"}) // a target that does not answer: the list stays
	h.step()
	h.expect("mc-0.mc.test=127.0.0.8:11211/1,mc-1.mc.test=mc-1.mc.test:11211/1")
	if c := h.w.Counts(); c.Failures != 1 {
		t.Fatalf("counts %+v: want 1 failure", c)
	}
}
