//go:build linux

package twemimport

import (
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/netnstest"
)

// An unnamed server on port 11211 is hashed by twemproxy's ketama as its
// host alone. Port 11211 belongs to whoever holds it on the machine, so
// the case runs again in a private network namespace (as ring's
// TestPort11211 does).
func TestConvertPort11211(t *testing.T) {
	if !netnstest.Run(t, "TestConvertPort11211", 3*time.Minute) {
		return
	}
	fixed := netnstest.StartMemcachedOn(t, 11211)
	others := []string{memcachedtest.Start(t).Addr, memcachedtest.Start(t).Addr}
	runCase(t, []poolSpec{{
		name:     "legacy",
		settings: "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n",
		weights:  []int{1, 1, 2},
		addrs:    append([]string{fixed}, others...),
	}}, testKeys(testKeyCount))
}
