package main

import (
	"fmt"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/internal/resolve"
)

// unresolvedBackends returns a sentence for each backend whose address
// does not resolve now (no such host, DNS down), looked up in parallel
// within resolve.Timeout. Such a config is valid (the name may resolve
// later: a container not started yet), but until it does the backend's
// keys fail, so -check and the start-up log say so, rather than leave an
// operator with nothing but SERVER_ERROR.
//
// A server listed in several pools is looked up and named once, by its
// first listing.
func unresolvedBackends(cfg config.Config) []string {
	listed := configServers(cfg)
	addrs := make([]string, len(listed))
	for i, b := range listed {
		addrs[i] = b.Addr
	}
	servers, errs := resolve.Lookup(addrs)
	var out []string
	for i, s := range servers {
		if s == nil {
			out = append(out, fmt.Sprintf("%s.addr %s does not resolve (%v): its keys fail until it does",
				listed[i].key, addrs[i], errs[i]))
		}
	}
	return out
}
