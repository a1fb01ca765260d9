package config

import (
	"fmt"

	"github.com/mcproxy/mcproxy/internal/resolve"
	"github.com/mcproxy/mcproxy/proxy"
)

// maxNameLen bounds backends[].name: it appears in every "stats backends"
// line and metric label of the backend.
const maxNameLen = 250

// backendNames checks the names, which are the backends' identities on the
// ring: printable, no spaces, and unique, counting an unnamed backend as
// named by its address.
func (v *validator) backendNames(list string, bs []Backend) {
	seen := map[string]int{}
	for i, b := range bs {
		key := fmt.Sprintf("%s[%d]", list, i)
		if v.skip(key) || v.skip(key+".name") {
			continue
		}
		name := b.Name
		if name != "" {
			if msg := badName(name); msg != "" {
				v.errorf(key+".name", "%q %s", name, msg)
				continue
			}
		} else {
			if b.Addr == "" {
				continue // reported as a missing addr
			}
			name = b.Addr
		}
		first, dup := seen[name]
		if !dup {
			seen[name] = i
			continue
		}
		switch {
		case b.Name != "" && bs[first].Name != "":
			v.errorf(key+".name", "%s duplicates %s[%d].name %s", name, list, first, bs[first].Name)
		case b.Name != "":
			v.errorf(key+".name", "%s duplicates the name of %s[%d], which is unnamed and so named by its addr %s", name, list, first, bs[first].Addr)
		default:
			// Unnamed, named by its address; the first holds that name.
			// (Two unnamed ones with the same address are reported as
			// duplicate addresses.)
			if bs[first].Name != "" {
				v.errorf(key+".addr", "%s, the name of this unnamed backend, duplicates %s[%d].name %s", name, list, first, bs[first].Name)
			}
		}
	}
}

// badName says what is wrong with a given backend name, "" if nothing.
func badName(name string) string {
	if len(name) > maxNameLen {
		return fmt.Sprintf("is %d bytes, more than %d", len(name), maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f {
			return "must not contain spaces or control characters (it is a word of stats lines)"
		}
	}
	return ""
}

// sameServers refuses two backends whose addresses, spelled differently
// (localhost:11311, 127.0.0.1:11311), resolve to one server: it would get
// two shares of the keys, and a reload could not tell which entry a
// respelling belongs to. idx lists the backends with a valid address not
// already reported as a duplicate. An address that does not resolve now
// is compared by its text only: DNS may be down at load, and a config
// must not be refused for it.
func (v *validator) sameServers(list string, bs []Backend, idx []int) {
	if len(idx) < 2 {
		return
	}
	addrs := make([]string, len(idx))
	for j, i := range idx {
		addrs[j] = bs[i].Addr
	}
	servers, _ := resolve.Lookup(addrs)
	for j := range idx {
		for k := 0; k < j; k++ {
			if resolve.Same(servers[k], servers[j]) {
				v.errorf(fmt.Sprintf("%s[%d].addr", list, idx[j]), "%s resolves to the same server as %s[%d].addr %s",
					bs[idx[j]].Addr, list, idx[k], bs[idx[k]].Addr)
				break
			}
		}
	}
}

// replicas checks replicas against its range, and the zones' spelling.
func (v *validator) replicas(c Config) {
	if c.Zone != "" && !v.skip("zone") {
		if msg := badName(c.Zone); msg != "" {
			v.errorf("zone", "%q %s", c.Zone, msg)
		}
	}
	v.copies("", c.Replicas, c.Backends)
}

// copies checks a pool's replicas and its backends' zones; prefix is ""
// for the top level, else "pools.<name>.".
func (v *validator) copies(prefix string, replicas int, backends []Backend) {
	if prefix != "" {
		prefix += "."
	}
	if !v.skip(prefix + "replicas") {
		// More than the backends is not an error: each backend then holds
		// a copy, as after ejections (proxy/replica.go).
		v.intRange(prefix+"replicas", replicas, proxy.MinReplicas, proxy.MaxReplicas)
	}
	for i, b := range backends {
		key := fmt.Sprintf("%sbackends[%d].zone", prefix, i)
		if b.Zone == "" || v.skip(key) {
			continue
		}
		if msg := badName(b.Zone); msg != "" {
			v.errorf(key, "%q %s", b.Zone, msg)
		}
	}
}
