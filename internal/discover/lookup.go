package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// newResolver is the Go resolver (no cgo, so a lookup honours its context
// deadline), asking spec.Resolver when set and the system's servers
// otherwise.
func newResolver(spec Spec) *net.Resolver {
	r := &net.Resolver{PreferGo: true}
	if spec.Resolver != "" {
		server := spec.Resolver
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}
	}
	return r
}

// errEmpty is an answer that names no backend: no records, or no such
// name (a headless Service with no ready pod answers NXDOMAIN).
var errEmpty = errors.New("no backends in the answer")

// lookup asks DNS once for spec's backends. It returns errEmpty (wrapped)
// when the answer names none, another error when there is no answer.
func lookup(ctx context.Context, r *net.Resolver, spec Spec) ([]Backend, error) {
	var out []Backend
	if spec.SRV != "" {
		_, srvs, err := r.LookupSRV(ctx, "", "", spec.SRV)
		if err != nil {
			return nil, classify("SRV "+spec.SRV, err)
		}
		out = fromSRV(srvs)
		if err := resolveTargets(ctx, r, out); err != nil {
			return nil, fmt.Errorf("lookup SRV %s: %w", spec.SRV, err)
		}
	} else {
		ips, err := r.LookupNetIP(ctx, "ip", spec.Host)
		if err != nil {
			return nil, classify("host "+spec.Host, err)
		}
		seen := map[string]bool{}
		for _, ip := range ips {
			addr := net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(spec.Port))
			if !seen[addr] {
				seen[addr] = true
				out = append(out, Backend{Name: addr, Addr: addr, Weight: 1})
			}
		}
	}
	if len(out) == 0 {
		what := "SRV " + spec.SRV
		if spec.SRV == "" {
			what = "host " + spec.Host
		}
		return nil, fmt.Errorf("lookup %s: %w", what, errEmpty)
	}
	return out, nil
}

// resolveTargets points each SRV backend at its target's address, asked of
// the same resolver as the SRV record: a resolver only mcproxy is told of
// (Consul's, a test server) may be the only one that knows the targets,
// and an address in Addr is what tells the proxy that a pod came back on
// a new IP under its unchanged name (it keeps the name's ring place). A target with
// no address records keeps its name in Addr (the dialer's resolver may
// know it); any other failure fails the lookup, so the last list stays.
// IPv4 is preferred, then the lowest address, so that the same answer
// gives the same Addr.
func resolveTargets(ctx context.Context, r *net.Resolver, bs []Backend) error {
	for i := range bs {
		host, port, err := net.SplitHostPort(bs[i].Addr)
		if err != nil {
			return err
		}
		ips, err := r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				continue
			}
			return fmt.Errorf("target %s: %w", host, err)
		}
		if len(ips) == 0 {
			continue
		}
		slices.SortFunc(ips, func(a, b netip.Addr) int {
			if a.Unmap().Is4() != b.Unmap().Is4() {
				if a.Unmap().Is4() {
					return -1
				}
				return 1
			}
			return a.Compare(b)
		})
		bs[i].Addr = net.JoinHostPort(ips[0].Unmap().String(), port)
	}
	return nil
}

// classify tells an answer without records (errEmpty) from no answer.
func classify(what string, err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return fmt.Errorf("lookup %s: %w (%v)", what, errEmpty, err)
	}
	return fmt.Errorf("lookup %s: %w", what, err)
}

// fromSRV turns SRV records into backends named by their targets. The "."
// target (RFC 2782: no service here) is skipped. Priorities are ignored:
// every target is a backend. A target listed with two ports (two memcached
// on one host) would give two backends one name, so those are named
// target:port instead.
func fromSRV(srvs []*net.SRV) []Backend {
	ports := map[string]map[uint16]bool{}
	for _, s := range srvs {
		t := strings.TrimSuffix(s.Target, ".")
		if ports[t] == nil {
			ports[t] = map[uint16]bool{}
		}
		ports[t][s.Port] = true
	}
	seen := map[string]bool{}
	var out []Backend
	for _, s := range srvs {
		target := strings.TrimSuffix(s.Target, ".")
		if target == "" {
			continue
		}
		addr := net.JoinHostPort(target, strconv.Itoa(int(s.Port)))
		name := target
		if len(ports[target]) > 1 {
			name = addr
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, Backend{Name: name, Addr: addr, Weight: max(int(s.Weight), 1)})
	}
	slices.SortFunc(out, func(a, b Backend) int { return strings.Compare(a.Name, b.Name) })
	return out
}
