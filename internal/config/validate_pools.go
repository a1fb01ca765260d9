package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mcproxy/mcproxy/internal/resolve"
	"github.com/mcproxy/mcproxy/protocol"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
)

// The rules here are those proxy.New and Reconfigure apply to Pools and
// Routes (proxy/pool.go checkPools, checkRoutes), checked at load so that
// each problem names its key and line; the placement rules are
// ring.NewPlacement's own, called here.

// pools checks each named pool: its name, its backends as the top-level
// ones are checked, its ring section and its placement; then the servers
// listed in several pools.
func (v *validator) pools(c Config) {
	seen := map[string]bool{}
	for _, pl := range c.Pools {
		key := "pools." + pl.Name
		if v.skip(key) {
			continue
		}
		switch {
		case badPoolName(pl.Name) != "":
			v.errorf(key, "pool name %q %s", pl.Name, badPoolName(pl.Name))
		case seen[pl.Name]:
			v.errorf(key, "pool listed twice")
		case pl.Name == proxy.DefaultPoolName && len(c.Backends) > 0:
			v.errorf(key, "the top-level backends are the pool named %s; move them into this pool or give it another name",
				proxy.DefaultPoolName)
		}
		seen[pl.Name] = true
		if pl.Discover.Set() {
			v.discovered(key, pl)
		} else if len(pl.Backends) == 0 && !v.skip(key+".backends") {
			v.errorf(key+".backends", "at least one backend is required (or discover)")
		}
		before := len(v.problems)
		v.backendList(key+".backends", pl.Backends)
		if pl.Distribution == ring.DistRing && pl.Ring != (Ring{}) {
			v.intRange(key+".ring.partitions", pl.Ring.Partitions, ring.MinPartitions, ring.MaxPartitions)
			v.intRange(key+".ring.replication_factor", pl.Ring.ReplicationFactor, ring.MinReplicationFactor, ring.MaxReplicationFactor)
			v.ringLoad(key+".ring.load", pl.Ring.Load)
		}
		v.placement(key, c, pl, len(v.problems) == before && len(pl.Backends) > 0)
		v.copies(key, pl.Replicas, pl.Backends)
		if pl.TLS != c.Backend.TLS {
			v.backendTLS(key+".tls", pl.TLS) // its own; backend.tls is checked in tls.go
		}
	}
	if len(c.Pools) > 0 {
		v.serversAcrossPools(c)
		v.tlsAcrossPools(c)
	}
}

// tlsAcrossPools refuses a server listed in pools with different TLS
// settings: it is one backend with one set of connections, dialled one
// way. (A pool found in DNS is not known here: the proxy dials a server
// it finds in several pools with the first pool's TLS.)
func (v *validator) tlsAcrossPools(c Config) {
	type first struct {
		pool string
		tls  BackendTLS
	}
	seen := map[string]first{}
	for _, pl := range c.PoolList() {
		for _, b := range pl.Backends {
			name := b.Name
			if name == "" {
				name = b.Addr // named by its address (serversAcrossPools makes these agree)
			}
			f, ok := seen[name]
			if !ok {
				seen[name] = first{pl.Name, pl.TLS}
				continue
			}
			if f.tls != pl.TLS && !v.skip("pools."+pl.Name+".tls") {
				v.errorf("pools."+pl.Name+".tls", "server %s is also in pool %s, with other TLS settings: "+
					"a server is one backend with one set of connections; give it the same TLS in each pool", name, f.pool)
				return
			}
		}
	}
}

// placement builds the pool's placement as the proxy will, and reports
// ring.NewPlacement's refusal at the key it is about: the options one at a
// time over a stand-in server (distribution, then hash, hash_tag and, for
// the distributions that take none, ring), then, when they passed their
// own checks (backendsOK), the pool's own backends.
func (v *validator) placement(key string, c Config, pl Pool, backendsOK bool) {
	o := c.Placement(pl)
	var small ring.Config // the stand-in steps need not build a full ring
	if o.Distribution == "" || o.Distribution == ring.DistRing {
		small = ring.Config{Partitions: ring.MinPartitions, ReplicationFactor: ring.MinReplicationFactor, Load: ring.DefaultLoad}
	}
	steps := []struct {
		key string
		o   ring.PlacementOptions
	}{
		{".distribution", ring.PlacementOptions{Distribution: o.Distribution, Ring: small}},
		{".hash", ring.PlacementOptions{Distribution: o.Distribution, Hash: o.Hash, Ring: small}},
		{".hash_tag", ring.PlacementOptions{Distribution: o.Distribution, Hash: o.Hash, HashTag: o.HashTag, Ring: small}},
	}
	if small == (ring.Config{}) {
		steps = append(steps, struct {
			key string
			o   ring.PlacementOptions
		}{".ring", o})
	}
	stand := []ring.Server{{Addr: "127.0.0.1:1"}}
	for _, s := range steps {
		if v.skip(key + s.key) {
			return
		}
		if _, err := ring.NewPlacement(stand, s.o); err != nil {
			v.errorf(key+s.key, "%s", strings.TrimPrefix(err.Error(), "ring: "))
			return
		}
	}
	// A ring's own settings were range-checked; what is left (the build
	// work bound) is about the backends as much as the ring.
	if !backendsOK {
		return
	}
	if _, err := ring.NewPlacement(PlacementServers(pl.Backends), o); err != nil {
		v.errorf(key+".backends", "%s", strings.TrimPrefix(err.Error(), "ring: "))
	}
}

// listing is one backend entry of some pool, for the checks across pools.
type listing struct {
	key   string // pools.main.backends[1]
	b     Backend
	canon string // canonical address
}

// name is the backend's identity: its name, else its address.
func (l listing) name() string {
	if l.b.Name != "" {
		return l.b.Name
	}
	return l.b.Addr
}

// serversAcrossPools checks the servers listed in more than one pool
// (the top-level backends count as a pool): one server has one name and
// one spelling of its address, one name is one server, and two spellings
// that resolve to one server are one server listed twice.
func (v *validator) serversAcrossPools(c Config) {
	lists := []struct {
		key string
		bs  []Backend
	}{{"backends", c.Backends}}
	for _, pl := range c.Pools {
		lists = append(lists, struct {
			key string
			bs  []Backend
		}{"pools." + pl.Name + ".backends", pl.Backends})
	}
	byAddr, byName := map[string]listing{}, map[string]listing{}
	var firsts []listing // the first listing of each address
	for _, list := range lists {
		for i, b := range list.bs {
			key := fmt.Sprintf("%s[%d]", list.key, i)
			canon, err := canonicalAddr(b.Addr, false)
			if err != nil || v.skip(key) || v.skip(key+".name") || badName(b.Name) != "" {
				continue // reported with the pool
			}
			l := listing{key: key, b: b, canon: canon}
			if first, ok := byAddr[canon]; !ok {
				byAddr[canon] = l
				firsts = append(firsts, l)
			} else if listOf(first.key) != list.key {
				v.sameListing(first, l) // within a pool, backendList reported it
				continue
			}
			if first, ok := byName[l.name()]; !ok {
				byName[l.name()] = l
			} else if first.canon != canon && listOf(first.key) != list.key {
				v.errorf(key+".name", "%s is the name of %s (%s); one name is one server", l.name(), first.key, first.b.Addr)
			}
		}
	}
	v.sameServerAcrossPools(firsts)
}

// listOf returns the list of a backend's key: "backends" for
// "backends[2]".
func listOf(key string) string { return key[:strings.LastIndexByte(key, '[')] }

// sameListing checks a server listed again in another pool against its
// first listing: the same name and the same address text (the proxy tells
// servers apart by them).
func (v *validator) sameListing(first, l listing) {
	switch {
	case l.name() != first.name():
		v.errorf(l.key+".name", "server %s is named %s here and %s in %s; a server listed in several pools has one name",
			l.b.Addr, l.name(), first.name(), first.key)
	case l.b.Addr != first.b.Addr:
		v.errorf(l.key+".addr", "%s is %s in %s; spell a server listed in several pools the same way",
			l.b.Addr, first.b.Addr, first.key)
	}
}

// sameServerAcrossPools reports two addresses of different pools that
// resolve to one server (within a pool, sameServers has).
func (v *validator) sameServerAcrossPools(firsts []listing) {
	if len(firsts) < 2 || !slices.ContainsFunc(firsts, func(l listing) bool { return listOf(l.key) != listOf(firsts[0].key) }) {
		return
	}
	addrs := make([]string, len(firsts))
	for i, l := range firsts {
		addrs[i] = l.b.Addr
	}
	servers, _ := resolve.Lookup(addrs)
	for j := range firsts {
		for k := 0; k < j; k++ {
			if listOf(firsts[k].key) != listOf(firsts[j].key) && resolve.Same(servers[k], servers[j]) {
				v.errorf(firsts[j].key+".addr", "%s resolves to the same server as %s.addr %s; spell a server listed in several pools the same way",
					firsts[j].b.Addr, firsts[k].key, firsts[k].b.Addr)
				break
			}
		}
	}
}

// routes checks the routes: required with several pools, each names a
// pool (and warms from another), each can match some key, and the last is
// the default.
func (v *validator) routes(c Config) {
	pools := c.PoolList()
	if len(c.Routes) == 0 {
		if len(pools) > 1 && !v.skip("routes") {
			v.errorf("routes", "required with more than one pool: a list of {prefix, pool} whose last entry has no prefix")
		}
		return
	}
	names := make([]string, len(pools))
	for i, pl := range pools {
		names[i] = pl.Name
	}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if v.skip(key) {
			continue
		}
		if msg := badPrefix(r.Prefix); msg != "" && !v.skip(key+".prefix") {
			v.errorf(key+".prefix", "%q %s", r.Prefix, msg)
		}
		for j, earlier := range c.Routes[:i] {
			if strings.HasPrefix(r.Prefix, earlier.Prefix) && !v.skip(fmt.Sprintf("routes[%d]", j)) {
				v.errorf(key, "never matches: routes[%d] %s comes first and takes its keys", j, describePrefix(earlier.Prefix))
				break
			}
		}
		v.routePool(key+".pool", r.Pool, names, "the name of a pool")
		if r.WarmFrom != "" {
			v.routePool(key+".warm_from", r.WarmFrom, names, "")
			if r.WarmFrom == r.Pool && !v.skip(key+".warm_from") {
				v.errorf(key+".warm_from", "%q is the route's own pool; name the pool the keys come from", r.WarmFrom)
			}
		}
	}
	if last := len(c.Routes) - 1; c.Routes[last].Prefix != "" && !v.skip(fmt.Sprintf("routes[%d]", last)) {
		v.errorf(fmt.Sprintf("routes[%d].prefix", last), "the last route must have no prefix: it is the default route, which takes every key the others do not")
	}
}

// routePool checks that name (routes[i].pool or .warm_from) is a pool.
func (v *validator) routePool(key, name string, pools []string, required string) {
	switch {
	case v.skip(key):
	case name == "" && required != "":
		v.errorf(key, "required: %s", required)
	case !slices.Contains(pools, name):
		v.errorf(key, "unknown pool %q; the pools are %s", name, strings.Join(pools, ", "))
	}
}

// describePrefix is a route's prefix as messages show it.
func describePrefix(prefix string) string {
	if prefix == "" {
		return "(no prefix: the default route)"
	}
	return fmt.Sprintf("prefix %q", prefix)
}

// badPoolName says what is wrong with a pool name, "" if nothing. Pool
// names are dotted keys' parts and label values, so they are plain words.
func badPoolName(name string) string {
	if name == "" {
		return "is empty"
	}
	if len(name) > maxNameLen {
		return fmt.Sprintf("is %d bytes, more than %d", len(name), maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "may hold only letters, digits, _ and -"
		}
	}
	return ""
}

// badPrefix says what is wrong with a route's prefix, "" if nothing: no
// key could start with it.
func badPrefix(prefix string) string {
	if len(prefix) > protocol.MaxKeyLength {
		return fmt.Sprintf("is %d bytes, longer than a key may be (%d)", len(prefix), protocol.MaxKeyLength)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; c <= ' ' || c == 0x7f {
			return "must not contain spaces or control characters: no key does"
		}
	}
	return ""
}
