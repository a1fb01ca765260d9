package config

import (
	"reflect"
	"sort"
	"strings"
)

// Diff returns the sorted dotted keys whose values differ between prev and
// next, e.g. ["backends", "health.interval", "listen", "ring.load"]. The keys
// are the YAML key names. The top-level backends are compared as a set of
// addr+weight pairs: the same backends in another order are no change, and
// any change to the list (added, removed, re-weighted) is reported as
// "backends". Pools and routes are compared entry by entry (pools.go:
// diffPools, diffRoutes), since a pool's order matters to modula.
func Diff(prev, next Config) []string {
	keys := []string{}
	if !sameBackends(prev.Backends, next.Backends) {
		keys = append(keys, "backends")
	}
	diffPools(prev.Pools, next.Pools, &keys)
	diffRoutes(prev.Routes, next.Routes, &keys)
	diffFields(reflect.ValueOf(prev), reflect.ValueOf(next), "", &keys)
	sort.Strings(keys)
	return keys
}

// diffFields compares two structs field by field, naming fields by their
// yaml tag and recursing into the sections. The lists (backends, pools,
// routes) are compared by Diff's own functions instead.
func diffFields(a, b reflect.Value, prefix string, keys *[]string) {
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || f.Type.Kind() == reflect.Slice {
			continue
		}
		key := prefix + name
		if f.Type.Kind() == reflect.Struct {
			diffFields(a.Field(i), b.Field(i), key+".", keys)
			continue
		}
		if !a.Field(i).Equal(b.Field(i)) {
			*keys = append(*keys, key)
		}
	}
}

// sameBackends compares two backend lists as multisets of addr+weight.
func sameBackends(a, b []Backend) bool {
	if len(a) != len(b) {
		return false
	}
	count := make(map[Backend]int, len(a))
	for _, x := range a {
		count[x]++
	}
	for _, x := range b {
		if count[x] == 0 {
			return false
		}
		count[x]--
	}
	return true
}
