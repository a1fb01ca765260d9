package deploytest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/dnsmasqtest"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"go.yaml.in/yaml/v3"
)

// setYAML sets the scalar at path (mapping keys from the document's root)
// to value, adding the key when the mapping lacks it.
func setYAML(t *testing.T, doc *yaml.Node, value string, path ...string) {
	t.Helper()
	n := doc
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	for i, key := range path {
		if n.Kind != yaml.MappingNode {
			t.Fatalf("the ConfigMap's config: %s is not a mapping", strings.Join(path[:i], "."))
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == key {
				next = n.Content[j+1]
			}
		}
		if next == nil {
			if i < len(path)-1 {
				t.Fatalf("the ConfigMap's config has no %s", strings.Join(path[:i+1], "."))
			}
			next = &yaml.Node{Kind: yaml.ScalarNode}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, next)
		}
		n = next
	}
	n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!str", value
}

// TestShippedConfigMapDiscovers runs the real mcproxy binary on the shipped
// ConfigMap's config, read from configmap.yaml, changed only where a test
// must: the listen and admin addresses (free loopback ports), the resolver
// (a dnsmasq on loopback, as the pod's cluster DNS) and the SRV name's
// domain (the relative name completed with the test zone, as the pod's
// search path completes it with <namespace>.svc.cluster.local). dnsmasq
// publishes the headless Service's SRV record for three StatefulSet pods
// (memcached-N.memcached, each a real memcached): the shipped discover
// section loads, finds all three, and keys spread over them.
func TestShippedConfigMapDiscovers(t *testing.T) {
	kc := loadKubeConfig(t, loadKube(t))
	srv := kc.cfg.Pools[0].Discover.SRV
	if srv == "" || strings.HasSuffix(srv, ".") {
		t.Fatalf("the ConfigMap's pool %s discovers by SRV %q; want a relative SRV name", kc.cfg.Pools[0].Name, srv)
	}
	name := srv + "." + dnsmasqtest.Zone
	recs := dnsmasqtest.Records{A: map[string]string{}}
	var servers []*memcachedtest.Server
	for i := 0; i < 3; i++ {
		s := memcachedtest.Start(t)
		servers = append(servers, s)
		target := fmt.Sprintf("memcached-%d.memcached.%s", i, dnsmasqtest.Zone)
		recs.SRV = append(recs.SRV, dnsmasqtest.SRV{Name: name, Target: target, Port: s.Port, Weight: 1})
		recs.A[target] = "127.0.0.1"
	}
	dns := dnsmasqtest.Start(t, recs)

	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(kc.configMap.Data[kc.key]), &doc); err != nil {
		t.Fatal(err)
	}
	listen, admin := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	pool := kc.cfg.Pools[0].Name
	setYAML(t, &doc, listen, "listen")
	setYAML(t, &doc, admin, "admin")
	setYAML(t, &doc, name, "pools", pool, "discover", "srv")
	setYAML(t, &doc, dns.Addr, "pools", pool, "discover", "resolver")
	text, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), kc.key)
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}

	p := startMcproxy(t, listen, "-config", path)
	memcachedtest.WaitStat(t, "the three pods found by SRV", p.Listen, "live_backends", "3")
	memcachedtest.WaitFor(t, "/readyz 200", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	const n = 300
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "set k%d 0 0 1\r\nv\r\n", i)
	}
	memcachedtest.Send(t, listen, b.String(), "STORED\r\n", n)
	for i, s := range servers {
		if items := memcachedtest.Stat(t, s.Addr, "curr_items"); items < n/6 {
			t.Errorf("memcached-%d holds %d of %d keys", i, items, n)
		}
	}
}
