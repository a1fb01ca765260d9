// Package twemimport converts a twemproxy (nutcracker) 0.5.0 config file
// into the equivalent mcproxy config: `mcproxy -import-twemproxy
// nutcracker.yml`.
//
// Each memcached server pool becomes a pool of the same distribution, hash,
// hash tag, servers, names and weights, so that mcproxy finds every key
// where twemproxy put it (TestConvertAgainstNutcracker proves it against
// the real nutcracker). twemproxy's per-pool settings that mcproxy has
// once (listen, timeout, ejection) are taken from the first pool; every
// setting without an equivalent, and every difference, is said in a YAML
// comment of the output. The output loads with config.Parse, which
// Convert checks before returning it.
package twemimport

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/proxy"
)

// twemproxy 0.5.0's defaults (src/nc_conf.h) that the conversion writes
// out where mcproxy's differ.
const (
	twemDefaultFailureLimit = 2
	twemDefaultRetryTimeout = 30 * time.Second
)

// Convert returns the mcproxy config equivalent to the nutcracker.yml in
// data; source names the file in the output's first comment.
func Convert(data []byte, source string) ([]byte, error) {
	pools, err := readPools(data)
	if err != nil {
		return nil, err
	}
	var out output
	out.note("mcproxy config converted from %s by mcproxy -import-twemproxy.", source)
	out.note("Check it with mcproxy -check -config FILE; docs/migration.md explains each step.")
	var kept []pool
	for _, p := range pools {
		if redis, err := p.flag("redis", false); err != nil {
			return nil, err
		} else if redis {
			out.note("pool %s is a redis pool (redis: true): mcproxy speaks only memcached; left out.", p.name)
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return nil, errors.New("no memcached pool: every pool has redis: true")
	}
	if err := out.globals(kept); err != nil {
		return nil, err
	}
	names, err := out.pools(kept)
	if err != nil {
		return nil, err
	}
	if len(names) > 1 {
		out.line("routes:")
		out.note("  twemproxy tells pools apart by their listen port; mcproxy by key prefix. Every key goes")
		out.note("  to the first pool: add a {prefix, pool} route above it for keys of the others, or")
		out.note("  run one mcproxy per pool (keep one pool in each file).")
		out.line("  - pool: %s", names[0])
	}
	text := []byte(out.b.String())
	if _, err := config.Parse(text, "the converted config"); err != nil {
		return nil, fmt.Errorf("the converted config does not load (a twemproxy setting mcproxy refuses): %w", err)
	}
	return text, nil
}

// output is the mcproxy YAML being written.
type output struct {
	b strings.Builder
}

// line writes a line of YAML.
func (o *output) line(format string, args ...any) {
	fmt.Fprintf(&o.b, format, args...)
	o.b.WriteByte('\n')
}

// note writes a comment line; the indentation of format (leading spaces)
// is kept.
func (o *output) note(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	in := text[:len(text)-len(strings.TrimLeft(text, " "))]
	o.line("%s# %s", in, strings.ReplaceAll(strings.TrimLeft(text, " "), "\n", " "))
}

// quote writes s as a YAML double-quoted string.
func quote(s string) string { return strconv.Quote(s) }

// globals writes listen, backend.timeout and the health section from the
// first pool, and a note for each later pool that differs, since mcproxy
// has each once.
func (o *output) globals(pools []pool) error {
	first := pools[0]
	if l, ok := first.values["listen"]; ok && !strings.HasPrefix(l, "/") {
		o.line("listen: %s", quote(l))
	} else if ok {
		o.note("listen %s: a unix socket; mcproxy listens on TCP: the default %s applies.", l, config.DefaultListen)
	}
	for _, p := range pools[1:] {
		if l := p.values["listen"]; l != first.values["listen"] {
			o.note("pool %s listened on %s; mcproxy has one listen address, pool %s's.", p.name, l, first.name)
		}
	}
	timeout, err := o.timeout(pools)
	if err != nil {
		return err
	}
	if timeout > 0 {
		o.line("backend:")
		o.line("  timeout: %v", timeout)
	}
	return o.health(pools)
}

// timeout returns the first pool's timeout (0 if none), noting pools that
// differ.
func (o *output) timeout(pools []pool) (time.Duration, error) {
	var first time.Duration
	for i, p := range pools {
		ms, ok, err := p.number("timeout")
		if err != nil {
			return 0, err
		}
		d := time.Duration(ms) * time.Millisecond
		switch {
		case i == 0 && (!ok || ms <= 0):
			o.note("timeout: pool %s sets none (twemproxy waits forever); mcproxy's backend.timeout, %v, applies.",
				p.name, proxy.DefaultBackendTimeout)
		case i == 0:
			first = d
		case d != first:
			o.note("pool %s had timeout %v; mcproxy has one backend.timeout, pool %s's.", p.name, d, pools[0].name)
		}
	}
	return first, nil
}

// health writes the health section from the first pool's
// auto_eject_hosts and server_failure_limit, and notes what differs.
func (o *output) health(pools []pool) error {
	p := pools[0]
	eject, err := p.flag("auto_eject_hosts", false)
	if err != nil {
		return err
	}
	limit, ok, err := p.number("server_failure_limit")
	if err != nil {
		return err
	}
	if !ok {
		limit = twemDefaultFailureLimit
	}
	o.line("health:")
	o.line("  auto_eject: %v", eject)
	if eject {
		o.note("  twemproxy counts failed requests, mcproxy failed probes (one per health.interval).")
		o.line("  failure_limit: %d", min(max(limit, health.MinFailureLimit), health.MaxFailureLimit))
		o.note("  mcproxy also ejects at most health.max_ejected servers at once and flushes one that")
		o.note("  comes back (health.flush_on_readd), so that it serves no stale value; twemproxy does neither.")
	}
	retry := twemDefaultRetryTimeout
	if ms, ok, err := p.number("server_retry_timeout"); err != nil {
		return err
	} else if ok {
		retry = time.Duration(ms) * time.Millisecond
	}
	if eject {
		o.note("  server_retry_timeout %v: twemproxy tries an ejected server again after it; mcproxy probes", retry)
		o.note("  it every health.interval and takes it back after health.success_limit good probes in a row.")
	}
	for _, q := range pools[1:] {
		e, err := q.flag("auto_eject_hosts", false)
		if err != nil {
			return err
		}
		l, _, _ := q.number("server_failure_limit")
		if e != eject || (e && l != 0 && l != limit) {
			o.note("pool %s had auto_eject_hosts %v, server_failure_limit %d; mcproxy has one health section, pool %s's.",
				q.name, e, l, p.name)
		}
	}
	return nil
}

// pools writes the pools section and returns the pool names used.
func (o *output) pools(pools []pool) ([]string, error) {
	o.line("pools:")
	var names []string
	for _, p := range pools {
		name := poolName(p.name)
		if name != p.name {
			o.note("  pool %q is named %s here: mcproxy's pool names are letters, digits, _ and -.", p.name, name)
		}
		for _, n := range names {
			if n == name {
				return nil, fmt.Errorf("pools %q and another are both named %s in mcproxy; rename one", p.name, name)
			}
		}
		names = append(names, name)
		if err := o.pool(name, p); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// poolName is a twemproxy pool name as an mcproxy pool name.
func poolName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
