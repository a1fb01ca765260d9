// Package metaclient checks mcproxy against a real client that speaks only
// the meta protocol, github.com/QuangTung97/go-memcache: the same scenario
// (sets, gets, deletes, cas, pipelined batches, leases and stale items)
// runs against memcached directly and through mcproxy in front of three
// memcached, and the two transcripts must be equal.
package metaclient

import (
	"fmt"
	"strings"
	"testing"

	"github.com/QuangTung97/go-memcache/memcache"
	"github.com/mcproxy/mcproxy/internal/testkit/inprocproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/proxy"
)

func TestMetaClientSeesMemcached(t *testing.T) {
	direct := memcachedtest.Start(t)
	proxyAddr, backends := inprocproxy.Start(t, proxy.Options{})
	want := scenario(t, direct.Addr)
	got := scenario(t, proxyAddr)
	if got != want {
		t.Fatalf("go-memcache sees a difference\nmemcached:\n%s\nmcproxy:\n%s", want, got)
	}
	t.Logf("%d lines of transcript match", strings.Count(want, "\n"))
	// The leases really were taken and seen: won (W), taken (Z), stale
	// and won (X W), stale and taken (X Z).
	for _, f := range []string{"flags 1 ", "flags 100 ", "flags 11 ", "flags 110 "} {
		if !strings.Contains(want, f) {
			t.Errorf("no reply with %s in the transcript:\n%s", f, want)
		}
	}
	// The scenario leaves a few hundred keys: the proxy spread them.
	for _, addr := range backends {
		if n := memcachedtest.Stat(t, addr, "curr_items"); n < 30 {
			t.Errorf("backend %s holds only %d items: keys are not spread", addr, n)
		}
	}
}

// transcript records what the client saw; cas uniques, which differ between
// servers by design, are recorded only as present or absent.
type transcript struct {
	t *testing.T
	b strings.Builder
}

func (tr *transcript) add(format string, args ...any) {
	fmt.Fprintf(&tr.b, format+"\n", args...)
}

func (tr *transcript) get(what string, r memcache.MGetResponse, err error) {
	if err != nil {
		tr.t.Fatalf("%s: %v", what, err)
	}
	tr.add("%s: type %d data %q flags %b cas>0 %v", what, r.Type, r.Data, r.Flags, r.CAS > 0)
}

func (tr *transcript) set(what string, r memcache.MSetResponse, err error) {
	if err != nil {
		tr.t.Fatalf("%s: %v", what, err)
	}
	tr.add("%s: type %d", what, r.Type)
}

func (tr *transcript) del(what string, r memcache.MDelResponse, err error) {
	if err != nil {
		tr.t.Fatalf("%s: %v", what, err)
	}
	tr.add("%s: type %d", what, r.Type)
}

// scenario drives the server at addr through go-memcache and returns what
// it saw.
func scenario(t *testing.T, addr string) string {
	c, err := memcache.New(addr, 2)
	if err != nil {
		t.Fatalf("client for %s: %v", addr, err)
	}
	defer c.Close()
	tr := &transcript{t: t}
	p := c.Pipeline()
	defer p.Finish()
	if err := p.FlushAll()(); err != nil {
		t.Fatalf("flush_all on %s: %v", addr, err)
	}

	// Sets, then gets of the same keys and of missing ones, in one batch
	// each: the replies come from all three backends, in order.
	const n = 300
	var sets []func() (memcache.MSetResponse, error)
	for i := 0; i < n; i++ {
		sets = append(sets, p.MSet(fmt.Sprintf("key:%d", i), []byte(fmt.Sprintf("value-%d", i)), memcache.MSetOptions{TTL: uint32(i % 3 * 100)}))
	}
	for i, f := range sets {
		r, err := f()
		tr.set(fmt.Sprintf("set key:%d", i), r, err)
	}
	var gets []func() (memcache.MGetResponse, error)
	for i := 0; i < n+20; i++ {
		gets = append(gets, p.MGet(fmt.Sprintf("key:%d", i), memcache.MGetOptions{}))
	}
	for i, f := range gets {
		r, err := f()
		tr.get(fmt.Sprintf("get key:%d", i), r, err)
	}

	// Deletes, hits and misses, then the gets again.
	var dels []func() (memcache.MDelResponse, error)
	for i := 0; i < n+20; i += 3 {
		dels = append(dels, p.MDel(fmt.Sprintf("key:%d", i), memcache.MDelOptions{}))
	}
	for i, f := range dels {
		r, err := f()
		tr.del(fmt.Sprintf("delete key:%d", 3*i), r, err)
	}
	for i := 0; i < 30; i++ {
		r, err := p.MGet(fmt.Sprintf("key:%d", i), memcache.MGetOptions{})()
		tr.get(fmt.Sprintf("get after delete key:%d", i), r, err)
	}

	// Compare and swap: the cas read works once, a stale one is refused.
	r, err := p.MGet("key:1", memcache.MGetOptions{CAS: true})()
	tr.get("gets key:1", r, err)
	cas := r.CAS
	sr, err := p.MSet("key:1", []byte("swapped"), memcache.MSetOptions{CAS: cas})()
	tr.set("cas key:1 with its cas", sr, err)
	sr, err = p.MSet("key:1", []byte("again"), memcache.MSetOptions{CAS: cas})()
	tr.set("cas key:1 with the old cas", sr, err)
	dr, err := p.MDel("key:1", memcache.MDelOptions{CAS: cas})()
	tr.del("delete key:1 with the old cas", dr, err)
	r, err = p.MGet("key:1", memcache.MGetOptions{})()
	tr.get("get key:1", r, err)

	// Leases: the first reader of a missing key wins (W) and fills it with
	// its cas; a second reader sees the lease taken (Z).
	for i := 0; i < 10; i++ {
		key := fmt.Sprintf("lease:%d", i)
		r, err := p.MGet(key, memcache.MGetOptions{N: 30, CAS: true})()
		tr.get("lease "+key, r, err)
		r2, err := p.MGet(key, memcache.MGetOptions{N: 30, CAS: true})()
		tr.get("lease again "+key, r2, err)
		sr, err := p.MSet(key, []byte("filled"), memcache.MSetOptions{CAS: r.CAS, TTL: 100})()
		tr.set("fill "+key, sr, err)
		r3, err := p.MGet(key, memcache.MGetOptions{N: 30})()
		tr.get("after fill "+key, r3, err)
	}

	// Stale items: a delete with I marks the item stale; the next reader
	// gets the stale value and the lease (X W), the one after only X Z.
	for i := 0; i < 10; i++ {
		key := fmt.Sprintf("lease:%d", i)
		dr, err := p.MDel(key, memcache.MDelOptions{I: true, TTL: 30})()
		tr.del("invalidate "+key, dr, err)
		r, err := p.MGet(key, memcache.MGetOptions{N: 30, CAS: true})()
		tr.get("stale "+key, r, err)
		r2, err := p.MGet(key, memcache.MGetOptions{N: 30})()
		tr.get("stale again "+key, r2, err)
		sr, err := p.MSet(key, []byte("fresh"), memcache.MSetOptions{CAS: r.CAS})()
		tr.set("refill "+key, sr, err)
		r3, err := p.MGet(key, memcache.MGetOptions{})()
		tr.get("after refill "+key, r3, err)
	}

	// A pipelined batch mixing all three commands on overlapping keys.
	type step struct {
		name string
		read func()
	}
	var batch []step
	for i := 0; i < 200; i++ {
		key := fmt.Sprintf("mix:%d", i%37)
		name := fmt.Sprintf("%d %s", i, key)
		switch i % 4 {
		case 0, 1:
			// i+1: go-memcache cannot send an empty value.
			f := p.MSet(key, []byte(strings.Repeat("v", i+1)), memcache.MSetOptions{})
			batch = append(batch, step{"set " + name, func() { r, err := f(); tr.set("batch set "+name, r, err) }})
		case 2:
			f := p.MGet(key, memcache.MGetOptions{})
			batch = append(batch, step{"get " + name, func() { r, err := f(); tr.get("batch get "+name, r, err) }})
		default:
			f := p.MDel(key, memcache.MDelOptions{})
			batch = append(batch, step{"del " + name, func() { r, err := f(); tr.del("batch del "+name, r, err) }})
		}
	}
	for _, s := range batch {
		s.read()
	}

	// A value near memcached's item size limit goes through whole.
	big := []byte(strings.Repeat("b", 900<<10))
	sr, err = p.MSet("big", big, memcache.MSetOptions{})()
	tr.set("set big", sr, err)
	r, err = p.MGet("big", memcache.MGetOptions{})()
	if err != nil || string(r.Data) != string(big) {
		t.Fatalf("big value from %s: %d bytes, %v", addr, len(r.Data), err)
	}
	tr.add("get big: type %d, %d bytes", r.Type, len(r.Data))
	return tr.b.String()
}
