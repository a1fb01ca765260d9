// Package resolve tells whether two backend addresses name the same
// memcached server: "localhost:11311" and "127.0.0.1:11311" are two
// spellings of one server. Config validation uses it to refuse a server
// listed twice, and the proxy to recognise a backend whose address was
// respelled on reload.
package resolve

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Timeout bounds the lookups of one call: a slow or absent DNS server
// delays a config load by at most this long.
const Timeout = 2 * time.Second

// Server is the set of IP:port endpoints one host:port address resolves to.
// A nil Server did not resolve.
type Server []netip.AddrPort

// Lookup resolves every address of addrs, in parallel, within Timeout.
// out[i] is nil where addrs[i] did not resolve (not host:port, no such
// host, timeout), and errs[i] says why: what cannot be resolved now is
// compared by its text only. An IP literal needs no lookup.
func Lookup(addrs []string) (out []Server, errs []error) {
	out = make([]Server, len(addrs))
	errs = make([]error, len(addrs))
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	done := make(chan struct{}, len(addrs))
	pending := 0
	for i, a := range addrs {
		host, port, err := split(a)
		if err != nil {
			errs[i] = err
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			out[i] = Server{netip.AddrPortFrom(ip.Unmap(), port)}
			continue
		}
		pending++
		go func(i int, host string, port uint16) {
			defer func() { done <- struct{}{} }()
			ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if err != nil {
				errs[i] = err
				return
			}
			s := make(Server, len(ips))
			for j, ip := range ips {
				s[j] = netip.AddrPortFrom(ip.Unmap(), port)
			}
			out[i] = s // each goroutine writes only its own elements
		}(i, host, port)
	}
	for ; pending > 0; pending-- {
		<-done // the resolver honours ctx, so this ends within Timeout
	}
	return out, errs
}

// Same reports whether a and b share an endpoint: one server answers both.
// Unresolved servers are never the same as anything.
func Same(a, b Server) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func split(addr string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q has no host", addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("%q: port %q is not 1..65535", addr, port)
	}
	return host, uint16(n), nil
}
