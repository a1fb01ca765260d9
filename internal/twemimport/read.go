package twemimport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxInput bounds the nutcracker.yml Convert reads: a real one is a few
// kilobytes.
const maxInput = 1 << 20

// poolKeys are the keys of a server pool twemproxy 0.5.0 knows
// (src/nc_conf.c, conf_commands).
var poolKeys = []string{
	"listen", "hash", "hash_tag", "distribution", "timeout", "backlog", "client_connections", "redis",
	"tcpkeepalive", "redis_auth", "redis_db", "preconnect", "auto_eject_hosts", "server_connections",
	"server_retry_timeout", "server_failure_limit", "servers",
}

// pool is one server pool of a nutcracker.yml, as read.
type pool struct {
	name    string
	values  map[string]string // every scalar key given, as written
	servers []server
}

// server is one "host:port:weight [name]" line of a pool's servers.
type server struct {
	host   string
	port   int
	weight int
	name   string // "" when the line has none
}

// addr is the server's host:port as mcproxy writes a backend address.
func (s server) addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// readPools reads the pools of a nutcracker.yml in file order.
func readPools(data []byte) ([]pool, error) {
	if len(data) > maxInput {
		return nil, fmt.Errorf("the file is %d bytes, more than %d: not a nutcracker.yml", len(data), maxInput)
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty: want server pools")
		}
		return nil, fmt.Errorf("malformed YAML: %w", err)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode || len(root.Content) == 0 {
		return nil, fmt.Errorf("line %d: want a mapping of pool names to pools", root.Line)
	}
	var pools []pool
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		p, err := readPool(k.Value, k.Line, v)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", k.Value, err)
		}
		pools = append(pools, p)
	}
	return pools, nil
}

// readPool reads one pool's mapping; line is that of its name.
func readPool(name string, line int, n *yaml.Node) (pool, error) {
	p := pool{name: name, values: map[string]string{}}
	if n.Kind != yaml.MappingNode {
		return p, fmt.Errorf("line %d: want a mapping of settings", line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(poolKeys, k.Value):
			return p, fmt.Errorf("line %d: unknown key %q (twemproxy 0.5.0 has none such)", k.Line, k.Value)
		case k.Value == "servers":
			if v.Kind != yaml.SequenceNode {
				return p, fmt.Errorf("line %d: servers: want a list", v.Line)
			}
			for _, item := range v.Content {
				s, err := parseServer(item.Value)
				if item.Kind != yaml.ScalarNode || err != nil {
					return p, fmt.Errorf("line %d: servers: %q: %v", item.Line, item.Value, err)
				}
				p.servers = append(p.servers, s)
			}
		case v.Kind != yaml.ScalarNode:
			return p, fmt.Errorf("line %d: %s: want a value, got a list or mapping", v.Line, k.Value)
		default:
			p.values[k.Value] = v.Value
		}
	}
	if len(p.servers) == 0 {
		return p, fmt.Errorf("line %d: no servers", line)
	}
	return p, nil
}

// parseServer reads "host:port:weight [name]" from the end, as
// conf_add_server does: the name after the last space, the weight after
// the last colon, the port after the one before.
func parseServer(s string) (server, error) {
	if strings.HasPrefix(s, "/") {
		return server{}, errors.New("a unix socket server has no equivalent: mcproxy's backends are host:port over TCP")
	}
	var srv server
	rest := s
	if i := strings.LastIndexByte(rest, ' '); i >= 0 {
		rest, srv.name = rest[:i], rest[i+1:]
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return srv, errors.New(`want "host:port:weight [name]"`)
	}
	w, err := strconv.Atoi(rest[i+1:])
	if err != nil || w <= 0 {
		return srv, fmt.Errorf("weight %q must be a whole number above 0", rest[i+1:])
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, ':')
	if j <= 0 {
		return srv, errors.New(`want "host:port:weight [name]"`)
	}
	port, err := strconv.Atoi(rest[j+1:])
	if err != nil || port <= 0 || port > 65535 {
		return srv, fmt.Errorf("port %q must be a number 1..65535", rest[j+1:])
	}
	srv.host, srv.port, srv.weight = strings.Trim(rest[:j], "[]"), port, w
	return srv, nil
}

// number reads an integer setting; ok is false when the pool does not set
// it.
func (p pool) number(key string) (n int, ok bool, err error) {
	v, ok := p.values[key]
	if !ok {
		return 0, false, nil
	}
	n, err = strconv.Atoi(v)
	if err != nil {
		return 0, false, fmt.Errorf("pool %s: %s: %q is not a whole number", p.name, key, v)
	}
	return n, true, nil
}

// flag reads a boolean setting: "true" or "false", as twemproxy reads
// them (conf_set_bool); def when the pool does not set it.
func (p pool) flag(key string, def bool) (bool, error) {
	switch v, ok := p.values[key]; {
	case !ok:
		return def, nil
	case v == "true":
		return true, nil
	case v == "false":
		return false, nil
	default:
		return false, fmt.Errorf("pool %s: %s: %q is not true or false", p.name, key, v)
	}
}
