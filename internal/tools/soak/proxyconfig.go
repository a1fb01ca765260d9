package soak

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
)

// ProxyConfig is what the soak puts in mcproxy's YAML config besides the
// addresses. Only keys every mcproxy accepts are written by default; keys
// that newer versions add (failover.ttl, health.max_ejected, ...) are
// written only when asked for through Extra, so the tool runs against any
// version: mcproxy refuses unknown keys, and the run reports that refusal.
type ProxyConfig struct {
	Health         mcproxyproc.HealthSettings
	FlushOnReadd   bool
	BackendTimeout time.Duration
	ConnectTimeout time.Duration
	// Extra holds further keys as "section.key=value" or "key=value"; the
	// value is copied into the YAML as written. A key given here replaces
	// the soak's own value for it.
	Extra []string
}

// extraKey is the shape of a key in Extra: one or two YAML names.
var extraKey = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$`)

// yamlSection is one top-level key of the config: a scalar, or a mapping
// of scalars.
type yamlSection struct {
	name   string
	value  string // for a scalar
	keys   []string
	values map[string]string
}

// render writes the YAML config of mcproxy listening on listen with its
// admin server on admin, in front of backends.
func (pc *ProxyConfig) render(listen, admin string, backends []string) ([]byte, error) {
	var secs []*yamlSection
	find := func(name string) *yamlSection {
		for _, s := range secs {
			if s.name == name {
				return s
			}
		}
		s := &yamlSection{name: name, values: map[string]string{}}
		secs = append(secs, s)
		return s
	}
	set := func(section, key, value string) {
		s := find(section)
		if key == "" {
			s.value = value
			return
		}
		if _, ok := s.values[key]; !ok {
			s.keys = append(s.keys, key)
		}
		s.values[key] = value
	}
	set("listen", "", listen)
	set("admin", "", admin)
	set("health", "interval", pc.Health.Interval.String())
	set("health", "timeout", pc.Health.Timeout.String())
	set("health", "failure_limit", fmt.Sprint(pc.Health.FailureLimit))
	set("health", "success_limit", fmt.Sprint(pc.Health.SuccessLimit))
	set("health", "auto_eject", "true")
	set("health", "flush_on_readd", fmt.Sprint(pc.FlushOnReadd))
	set("backend", "timeout", pc.BackendTimeout.String())
	set("backend", "connect_timeout", pc.ConnectTimeout.String())
	for _, e := range pc.Extra {
		k, v, ok := strings.Cut(e, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !extraKey.MatchString(k) || v == "" || strings.ContainsAny(v, "\r\n#") {
			return nil, fmt.Errorf("proxy setting %q: want section.key=value or key=value, one line", e)
		}
		if k == "listen" || k == "admin" || k == "backends" || strings.HasPrefix(k, "backends.") {
			return nil, fmt.Errorf("proxy setting %q: the soak sets %s itself", e, k)
		}
		section, key, _ := strings.Cut(k, ".")
		if s := find(section); (key == "" && len(s.keys) > 0) || (key != "" && s.value != "") {
			return nil, fmt.Errorf("proxy setting %q: %s is a section in one place and a value in another", e, section)
		}
		set(section, key, v)
	}
	var b bytes.Buffer
	b.WriteString("# written by mcsoak for one soak run\n")
	for _, s := range secs {
		if len(s.keys) == 0 {
			fmt.Fprintf(&b, "%s: %s\n", s.name, yamlScalar(s.value))
			continue
		}
		fmt.Fprintf(&b, "%s:\n", s.name)
		for _, k := range s.keys {
			fmt.Fprintf(&b, "  %s: %s\n", k, yamlScalar(s.values[k]))
		}
	}
	b.WriteString("backends:\n")
	for _, a := range backends {
		fmt.Fprintf(&b, "  - addr: %s\n", a)
	}
	return b.Bytes(), nil
}

// yamlScalar quotes the empty string, which YAML would read as null.
func yamlScalar(v string) string {
	if v == "" {
		return `""`
	}
	return v
}
