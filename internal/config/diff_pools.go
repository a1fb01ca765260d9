package config

import (
	"fmt"
	"reflect"
)

// diffPools adds the keys of pools that differ, matching pools by name: a
// pool added or removed is "pools.<name>", a changed setting
// "pools.<name>.hash" or "pools.<name>.ring.load", a changed backend
// "pools.<name>.backends[i].weight" (by position: modula counts in list
// order), and backends added or removed at the end
// "pools.<name>.backends[i]".
func diffPools(prev, next []Pool, keys *[]string) {
	old := make(map[string]Pool, len(prev))
	for _, p := range prev {
		old[p.Name] = p
	}
	for _, n := range next {
		key := "pools." + n.Name
		p, ok := old[n.Name]
		delete(old, n.Name)
		if !ok {
			*keys = append(*keys, key)
			continue
		}
		diffFields(reflect.ValueOf(p), reflect.ValueOf(n), key+".", keys)
		diffBackendList(p.Backends, n.Backends, key+".backends", keys)
	}
	for name := range old {
		*keys = append(*keys, "pools."+name)
	}
}

// diffBackendList adds the keys of the entries of list that differ, by
// position.
func diffBackendList(prev, next []Backend, list string, keys *[]string) {
	for i := 0; i < max(len(prev), len(next)); i++ {
		key := fmt.Sprintf("%s[%d]", list, i)
		if i >= len(prev) || i >= len(next) {
			*keys = append(*keys, key)
			continue
		}
		diffFields(reflect.ValueOf(prev[i]), reflect.ValueOf(next[i]), key+".", keys)
	}
}

// diffRoutes adds the keys of the routes that differ, by position:
// "routes[1].prefix", and "routes[2]" for a route added or removed at the
// end.
func diffRoutes(prev, next []Route, keys *[]string) {
	for i := 0; i < max(len(prev), len(next)); i++ {
		key := fmt.Sprintf("routes[%d]", i)
		if i >= len(prev) || i >= len(next) {
			*keys = append(*keys, key)
			continue
		}
		diffFields(reflect.ValueOf(prev[i]), reflect.ValueOf(next[i]), key+".", keys)
	}
}
