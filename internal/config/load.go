package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
	"go.yaml.in/yaml/v3"
)

// Load reads the YAML config file at path, applies defaults and validates
// it. Errors start with "load config <path>:" and list every problem found,
// one per line, each naming the dotted key and its line in the file.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load config %s: %w", path, err)
	}
	return Parse(data, path)
}

// Parse is Load for a config already in memory; name is used in errors in
// place of the file path. On error the returned Config is the zero value.
func Parse(data []byte, name string) (Config, error) {
	cfg := Default()
	p := &parser{lines: map[string]int{}, bad: map[string]bool{}, null: map[string]bool{}}
	if !p.document(data, &cfg) {
		return Config{}, wrapProblems(name, p.problems)
	}
	p.fillPoolDefaults(&cfg)
	p.problems = append(p.problems, validate(cfg, p.lines, p.bad)...)
	if len(p.problems) > 0 {
		return Config{}, wrapProblems(name, p.problems)
	}
	return cfg, nil
}

// problem is one thing wrong with a config, at a line of the file (0: no
// line applies, e.g. a required key that is missing).
type problem struct {
	line int
	msg  string
}

func (p problem) Error() string {
	if p.line > 0 {
		return fmt.Sprintf("line %d: %s", p.line, p.msg)
	}
	return p.msg
}

// wrapProblems orders the problems as they appear in the file (those without
// a line last) and joins them under one "load config <name>:" heading.
func wrapProblems(name string, ps []problem) error {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].line, ps[j].line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
	if len(ps) == 1 {
		return fmt.Errorf("load config %s: %w", name, ps[0])
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return fmt.Errorf("load config %s: %d problems:\n%w", name, len(ps), errors.Join(errs...))
}

// parser walks the YAML node tree itself rather than unmarshaling into
// structs, so that every message can name the full dotted key and its line.
type parser struct {
	problems []problem
	lines    map[string]int  // dotted key -> line of its value, for validation messages
	bad      map[string]bool // keys whose value could not be read; validation skips them
	null     map[string]bool // keys written with an empty value, which keep their default
}

// field reads the value node v of the dotted key into the config.
type field func(key string, v *yaml.Node)

func (p *parser) errorf(line int, format string, args ...any) {
	p.problems = append(p.problems, problem{line: line, msg: fmt.Sprintf(format, args...)})
}

// typeError reports a value of the wrong type and marks the key bad.
func (p *parser) typeError(key string, v *yaml.Node, want string) {
	p.bad[key] = true
	p.errorf(v.Line, "%s: want %s, got %s", key, want, describe(v))
}

// document parses the single YAML document in data into cfg. It returns false
// when the YAML itself is malformed, in which case nothing else is checked.
func (p *parser) document(data []byte, cfg *Config) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return true // an empty file: all defaults, and validation reports the missing backends
		}
		p.problems = append(p.problems, syntaxProblem(data, err))
		return false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = 0
		}
		p.errorf(line, "the file must hold one YAML document, found a second one")
		return false
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return true
		}
		root = root.Content[0]
	}
	p.mapping("", root, p.topLevel(cfg))
	return true
}

// topLevel maps every key of the file onto the config. Nested maps are the
// sections; the key names here are the public contract.
func (p *parser) topLevel(c *Config) map[string]field {
	return map[string]field{
		"listen":            p.str(&c.Listen),
		"admin":             p.str(&c.Admin),
		"reuse_port":        p.boolean(&c.ReusePort),
		"upgrade_socket":    p.str(&c.UpgradeSocket),
		"pprof":             p.boolean(&c.Pprof),
		"disable_flush_all": p.boolean(&c.DisableFlushAll),
		"event_loops":       p.integer(&c.EventLoops),
		"backends":          p.backends(&c.Backends),
		"pools":             p.pools(&c.Pools),
		"routes":            p.routes(&c.Routes),
		"replicas":          p.integer(&c.Replicas),
		"zone":              p.str(&c.Zone),
		"ring": p.section(map[string]field{
			"partitions":         p.integer(&c.Ring.Partitions),
			"replication_factor": p.integer(&c.Ring.ReplicationFactor),
			"load":               p.float(&c.Ring.Load),
		}),
		"health": p.section(map[string]field{
			"interval":       p.duration(&c.Health.Interval),
			"timeout":        p.duration(&c.Health.Timeout),
			"failure_limit":  p.integer(&c.Health.FailureLimit),
			"success_limit":  p.integer(&c.Health.SuccessLimit),
			"auto_eject":     p.boolean(&c.Health.AutoEject),
			"flush_on_readd": p.boolean(&c.Health.FlushOnReadd),
			"max_ejected":    p.ejectionCap(&c.Health.MaxEjected),
		}),
		"backend": p.section(map[string]field{
			"connections":     p.integer(&c.Backend.Connections),
			"timeout":         p.duration(&c.Backend.Timeout),
			"connect_timeout": p.duration(&c.Backend.ConnectTimeout),
			"tls":             p.backendTLSFields(&c.Backend.TLS), // tls.go
		}),
		"limits": p.section(map[string]field{
			"max_connections":      p.integer(&c.Limits.MaxConnections),
			"max_item_size":        p.size(&c.Limits.MaxItemSize, proxy.MinMaxItemSize, proxy.MaxMaxItemSize),
			"client_idle_timeout":  p.duration(&c.Limits.ClientIdleTimeout),
			"client_output_limit":  p.size(&c.Limits.ClientOutputLimit, proxy.MinClientOutputLimit, proxy.MaxClientOutputLimit),
			"reqs_per_event":       p.integer(&c.Limits.ReqsPerEvent),
			"read_bytes_per_event": p.size(&c.Limits.ReadBytesPerEvent, proxy.MinReadBytesPerEvent, proxy.MaxReadBytesPerEvent),
		}),
		"failover": p.section(map[string]field{
			"ttl": p.duration(&c.Failover.TTL),
		}),
		"tls": p.tlsFields(&c.TLS), // tls.go
	}
}

// mapping reads the mapping node n whose dotted key is prefix ("" for the
// top level), dispatching each key to its field and reporting unknown and
// repeated keys. A key with an empty (null) value keeps its default.
func (p *parser) mapping(prefix string, n *yaml.Node, fields map[string]field) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		if prefix == "" {
			p.errorf(n.Line, "the file must be a mapping of keys (listen, backends, ...), got %s", describe(n))
		} else {
			p.bad[prefix] = true
			p.errorf(n.Line, "%s: want a mapping of keys, got %s", prefix, describe(n))
		}
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k.Line, "%s: keys must be plain names, got %s", orTop(prefix), describe(k))
			continue
		}
		key := k.Value
		if prefix != "" {
			key = prefix + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(k.Line, "%s: key repeated (first at line %d)", key, first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			p.errorf(k.Line, "unknown key %q", key)
			continue
		}
		p.lines[key] = deref(v).Line
		if isNull(deref(v)) {
			p.null[key] = true
			continue
		}
		f(key, deref(v))
	}
}

// section reads a nested mapping such as "health".
func (p *parser) section(fields map[string]field) field {
	return func(key string, v *yaml.Node) { p.mapping(key, v, fields) }
}

// backends reads the backend list: each entry is a mapping {name, addr,
// weight} or the shorthand scalar "host:port".
func (p *parser) backends(dst *[]Backend) field {
	return func(key string, v *yaml.Node) {
		list := make([]Backend, 0, len(v.Content))
		ok := p.list(key, v, "a list of backends", func(ikey string, item *yaml.Node) {
			b := Backend{Weight: ring.DefaultWeight}
			switch {
			case isNull(item):
				p.bad[ikey] = true
				p.errorf(item.Line, "%s: empty entry; want host:port or {addr: host:port, weight: n}", ikey)
			case item.Kind == yaml.ScalarNode:
				p.lines[ikey+".addr"] = item.Line
				b.Addr = item.Value
			case item.Kind == yaml.MappingNode:
				p.mapping(ikey, item, map[string]field{
					"name":   p.str(&b.Name),
					"addr":   p.str(&b.Addr),
					"weight": p.integer(&b.Weight),
					"zone":   p.str(&b.Zone),
				})
			default:
				p.bad[ikey] = true
				p.errorf(item.Line, "%s: want host:port or {addr: host:port, weight: n}, got %s", ikey, describe(item))
			}
			list = append(list, b)
		})
		if ok {
			*dst = list
		}
	}
}

// list reads a YAML sequence at key, refusing anything else as not what
// it wants; each entry, dereferenced, goes to entry with its own key
// ("backends[2]"), whose line is recorded for later messages.
func (p *parser) list(key string, v *yaml.Node, want string, entry func(ikey string, item *yaml.Node)) bool {
	if v.Kind != yaml.SequenceNode {
		p.typeError(key, v, want)
		return false
	}
	for i, item := range v.Content {
		item = deref(item)
		ikey := fmt.Sprintf("%s[%d]", key, i)
		p.lines[ikey] = item.Line
		entry(ikey, item)
	}
	return true
}

// str reads any scalar as a string (addresses are checked in validation).
func (p *parser) str(dst *string) field {
	return func(key string, v *yaml.Node) {
		if v.Kind != yaml.ScalarNode {
			p.typeError(key, v, "a string")
			return
		}
		*dst = v.Value
	}
}

// ejectionCap reads a whole number of backends (1) or a percentage
// ("50%"); the range is checked in validation.
func (p *parser) ejectionCap(dst *EjectionCap) field {
	return func(key string, v *yaml.Node) {
		tag := v.ShortTag()
		if v.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!str") ||
			(tag == "!!str" && !strings.HasSuffix(v.Value, "%")) {
			p.typeError(key, v, `a number of backends such as 1 or a share of the pool such as "50%"`)
			return
		}
		*dst = EjectionCap(v.Value)
	}
}

// boolean reads true or false. YAML 1.1 words such as yes/no/on/off are
// refused rather than guessed at.
func (p *parser) boolean(dst *bool) field { return scalar(p, dst, "true or false", "!!bool") }

// integer reads a whole number (not quoted).
func (p *parser) integer(dst *int) field { return scalar(p, dst, "a whole number", "!!int") }

// float reads a number, with or without a fraction.
func (p *parser) float(dst *float64) field {
	return scalar(p, dst, "a number such as 1.25", "!!float", "!!int")
}

// scalar reads an unquoted YAML scalar whose resolved tag is one of tags
// and that decodes into T; anything else is a type error that asks for
// want. Checking the tag is what keeps "1" (a string) from passing as a
// number and "yes" from passing as true.
func scalar[T any](p *parser, dst *T, want string, tags ...string) field {
	return func(key string, v *yaml.Node) {
		var x T
		if v.Kind != yaml.ScalarNode || !slices.Contains(tags, v.ShortTag()) || v.Decode(&x) != nil {
			p.typeError(key, v, want)
			return
		}
		*dst = x
	}
}

// duration reads a Go duration string ("1s", "500ms", "1m30s") or a bare 0.
func (p *parser) duration(dst *time.Duration) field {
	return func(key string, v *yaml.Node) {
		const want = `a duration such as 1s or 500ms`
		if v.Kind != yaml.ScalarNode {
			p.typeError(key, v, want)
			return
		}
		if v.ShortTag() == "!!int" {
			var n int64
			if v.Decode(&n) == nil && n == 0 {
				*dst = 0
				return
			}
			p.bad[key] = true
			p.errorf(v.Line, "%s: %s has no unit; write a duration such as %ss or %sms", key, v.Value, v.Value, v.Value)
			return
		}
		d, err := time.ParseDuration(v.Value)
		if err != nil {
			p.typeError(key, v, want)
			return
		}
		*dst = d
	}
}

// size reads a byte size: an integer, or a string with suffix k or m.
func (p *parser) size(dst *int, lo, hi int64) field {
	return func(key string, v *yaml.Node) {
		if v.Kind != yaml.ScalarNode {
			p.typeError(key, v, "a size such as 1m, 512k or 1048576")
			return
		}
		var n int64
		var err error
		if v.ShortTag() == "!!int" {
			err = v.Decode(&n)
		} else {
			n, err = parseSize(v.Value)
		}
		if err != nil {
			p.bad[key] = true
			p.errorf(v.Line, "%s: %v", key, err)
			return
		}
		if n < lo || n > hi {
			// Checked here, while the value still fits in an int on every platform.
			p.bad[key] = true
			p.errorf(v.Line, "%s: %s is out of range %s..%s (%d..%d bytes)", key, v.Value,
				formatSize(lo), formatSize(hi), lo, hi)
			return
		}
		*dst = int(n)
	}
}

// deref follows YAML aliases (*name) to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports an empty value: "key:" with nothing after it, "~" or "null".
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names a node's value for a message: `"heavy"`, `a list`, ...
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return fmt.Sprintf("%q", n.Value)
		}
		return n.Value
	}
	return "nothing"
}

func orTop(prefix string) string {
	if prefix == "" {
		return "top level"
	}
	return prefix
}
