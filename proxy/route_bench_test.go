package proxy

import (
	"fmt"
	"testing"

	"github.com/mcproxy/mcproxy/ring"
)

// routeTableOf builds a route table of one pool per route, as a reload
// would, without a running proxy: what route() reads.
func routeTableOf(tb testing.TB, routes []Route) *routeTable {
	tb.Helper()
	var tables []*poolTable
	for _, r := range routes {
		pc, err := ring.NewPlacement([]ring.Server{{Addr: "127.0.0.1:11211"}}, ring.PlacementOptions{Distribution: ring.DistModula})
		if err != nil {
			tb.Fatal(err)
		}
		tables = append(tables, &poolTable{pool: &pool{name: r.Pool}, place: pc, members: []*backend{{name: r.Pool}}})
	}
	return newRouteTable(tables, routes, nil, nil)
}

// dozensOfRoutes is 36 prefix routes, some sharing first bytes, then the
// default.
func dozensOfRoutes() []Route {
	var rs []Route
	for i := range 36 {
		rs = append(rs, Route{Prefix: fmt.Sprintf("%c%d:", 'a'+i%12, i), Pool: fmt.Sprintf("p%d", i)})
	}
	return append(rs, Route{Pool: "default"})
}

func TestRouteLookupTakesTheFirstMatch(t *testing.T) {
	rt := routeTableOf(t, append([]Route{{Prefix: "a0:x", Pool: "long"}}, dozensOfRoutes()...))
	for key, want := range map[string]string{
		"a0:xyz": "long", "a0:y": "p0", "b1:": "p1", "l11:k": "p11", "a12:k": "p12",
		"a1": "default", "": "default", "zzz": "default",
	} {
		if got := rt.route([]byte(key)).pool.pool.name; got != want {
			t.Errorf("route(%q) = %s, want %s", key, got, want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { rt.route([]byte("k10:user")) }); allocs != 0 {
		t.Errorf("route allocates %v times", allocs)
	}
}

// BenchmarkRouteLookup measures choosing a pool for a key: with one pool
// and no prefix (the steady path of every config without routes), and
// with three dozen prefix routes, for a key that matches one and a key
// that takes the default.
func BenchmarkRouteLookup(b *testing.B) {
	one := routeTableOf(b, []Route{{Pool: "main"}})
	many := routeTableOf(b, dozensOfRoutes())
	for _, c := range []struct {
		name string
		t    *routeTable
		key  string
	}{
		{"one-pool", one, "user:1234:profile"},
		{"36-routes-match", many, "k34:user:1234:profile"},
		{"36-routes-default", many, "user:1234:profile"},
	} {
		b.Run(c.name, func(b *testing.B) {
			key := []byte(c.key)
			b.ReportAllocs()
			for range b.N {
				_ = c.t.route(key)
			}
		})
	}
}
