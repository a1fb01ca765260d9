package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"go.yaml.in/yaml/v3"
)

const kubeDir = "../../deploy/kubernetes"

// Only the fields the checks read; the rest of each manifest is free.
type kubeObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec kubeSpec          `yaml:"spec"`
	Data map[string]string `yaml:"data"`
	file string
}

type kubeSpec struct {
	Replicas    int               `yaml:"replicas"`
	ServiceName string            `yaml:"serviceName"`
	ClusterIP   string            `yaml:"clusterIP"`
	Selector    yaml.Node         `yaml:"selector"` // a map (Service) or {matchLabels} (the others)
	Ports       []kubeServicePort `yaml:"ports"`
	Template    struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	} `yaml:"template"`
	MinAvailable   *int `yaml:"minAvailable"`
	MaxUnavailable *int `yaml:"maxUnavailable"`
}

type kubeServicePort struct {
	Name       string    `yaml:"name"`
	Port       int       `yaml:"port"`
	TargetPort yaml.Node `yaml:"targetPort"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
	Containers                    []kubeContainer `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type kubeContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *kubeProbe `yaml:"readinessProbe"`
	LivenessProbe  *kubeProbe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type kubeProbe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port yaml.Node `yaml:"port"`
	} `yaml:"tcpSocket"`
}

// loadKube reads every resource the kustomization lists.
func loadKube(t *testing.T) map[string]kubeObject {
	t.Helper()
	var k struct {
		Resources []string `yaml:"resources"`
	}
	decodeFile(t, filepath.Join(kubeDir, "kustomization.yaml"), yaml.Unmarshal, &k)
	listed := map[string]bool{}
	objs := map[string]kubeObject{}
	for _, r := range k.Resources {
		listed[r] = true
		f, err := os.ReadFile(filepath.Join(kubeDir, r))
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", r, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(f))
		for {
			var o kubeObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("deploy/kubernetes/%s: %v", r, err)
			}
			if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
				t.Fatalf("deploy/kubernetes/%s: a document without apiVersion, kind or metadata.name", r)
			}
			o.file = r
			id := o.Kind + "/" + o.Metadata.Name
			if _, dup := objs[id]; dup {
				t.Fatalf("deploy/kubernetes/%s: %s defined twice", r, id)
			}
			objs[id] = o
		}
	}
	entries, _ := os.ReadDir(kubeDir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml" && !listed[e.Name()] {
			t.Errorf("deploy/kubernetes/%s is not in kustomization.yaml's resources", e.Name())
		}
	}
	return objs
}

func object(t *testing.T, objs map[string]kubeObject, id string) kubeObject {
	t.Helper()
	o, ok := objs[id]
	if !ok {
		t.Fatalf("deploy/kubernetes: no %s", id)
	}
	return o
}

// matchLabels reads a selector: the Service's plain map or {matchLabels: ...}.
func matchLabels(t *testing.T, o kubeObject) map[string]string {
	t.Helper()
	var sel struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if o.Kind != "Service" {
		if err := o.Spec.Selector.Decode(&sel); err != nil || len(sel.MatchLabels) == 0 {
			t.Fatalf("%s %s: spec.selector.matchLabels missing", o.file, o.Metadata.Name)
		}
		return sel.MatchLabels
	}
	var m map[string]string
	if err := o.Spec.Selector.Decode(&m); err != nil || len(m) == 0 {
		t.Fatalf("%s: Service %s has no selector", o.file, o.Metadata.Name)
	}
	return m
}

func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// portOf resolves a probe's or Service's port (a number or a port name).
func portOf(c kubeContainer, n yaml.Node) int {
	if p, err := strconv.Atoi(n.Value); err == nil {
		return p
	}
	for _, p := range c.Ports {
		if p.Name == n.Value {
			return p.ContainerPort
		}
	}
	return 0
}

// kubeConfig is mcproxy's container in the Deployment, its config as
// config.Parse reads it, the ConfigMap key and the mount path.
type kubeConfig struct {
	container kubeContainer
	cfg       config.Config
	mountPath string
	key       string
	configMap kubeObject
}

// cpuQuantity parses a Kubernetes CPU quantity: "250m", "1", "1.5".
func cpuQuantity(t *testing.T, q string) float64 {
	t.Helper()
	if m, ok := strings.CutSuffix(q, "m"); ok {
		n, err := strconv.Atoi(m)
		if err != nil {
			t.Fatalf("CPU quantity %q: %v", q, err)
		}
		return float64(n) / 1000
	}
	f, err := strconv.ParseFloat(q, 64)
	if err != nil {
		t.Fatalf("CPU quantity %q: %v", q, err)
	}
	return f
}

func loadKubeConfig(t *testing.T, objs map[string]kubeObject) kubeConfig {
	t.Helper()
	dep := object(t, objs, "Deployment/mcproxy")
	if len(dep.Spec.Template.Spec.Containers) == 0 {
		t.Fatal("deployment.yaml: no containers")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	cfgPath := flagValue(c.Args, "config")
	if cfgPath == "" {
		t.Fatalf("deployment.yaml: container %s args %q have no -config", c.Name, c.Args)
	}
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(cfgPath, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		if vm.SubPath != "" {
			t.Fatalf("deployment.yaml: the config volume is mounted with subPath, which Kubernetes never updates; mount the directory")
		}
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			cm := object(t, objs, "ConfigMap/"+v.ConfigMap.Name)
			text, ok := cm.Data[rel]
			if !ok {
				t.Fatalf("configmap.yaml: ConfigMap %s has no key %q, the file -config %s reads", cm.Metadata.Name, rel, cfgPath)
			}
			cfg, err := config.Parse([]byte(text), "ConfigMap "+cm.Metadata.Name+" "+rel)
			if err != nil {
				t.Fatalf("%v", err)
			}
			return kubeConfig{container: c, cfg: cfg, mountPath: vm.MountPath, key: rel, configMap: cm}
		}
	}
	t.Fatalf("deployment.yaml: -config %s is not inside a ConfigMap volume mount", cfgPath)
	return kubeConfig{}
}

func TestKubernetesManifests(t *testing.T) {
	objs := loadKube(t)
	kc := loadKubeConfig(t, objs)
	c, cfg := kc.container, kc.cfg
	dep := object(t, objs, "Deployment/mcproxy")
	podLabels := dep.Spec.Template.Metadata.Labels
	containerPort := func(addr string) int {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("config address %q: %v", addr, err)
		}
		n, _ := strconv.Atoi(p)
		for _, cp := range c.Ports {
			if cp.ContainerPort == n {
				return n
			}
		}
		t.Errorf("deployment.yaml: container %s does not declare port %d (%s in the ConfigMap)", c.Name, n, addr)
		return n
	}
	listenPort, adminPort := containerPort(cfg.Listen), 0
	if cfg.Admin == "" {
		t.Fatal("the ConfigMap's config has no admin address: the probes need /healthz and /readyz")
	}
	adminPort = containerPort(cfg.Admin)
	for _, addr := range []string{cfg.Listen, cfg.Admin} {
		if h, _, _ := net.SplitHostPort(addr); h != "" && h != "0.0.0.0" && h != "::" {
			t.Errorf("the ConfigMap's config binds %s; in a pod it must bind all interfaces", addr)
		}
	}

	t.Run("probes", func(t *testing.T) {
		for _, p := range []struct {
			name  string
			probe *kubeProbe
			path  string
		}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("deployment.yaml: %s is not an httpGet probe", p.name)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("deployment.yaml: %s path %q, want %s", p.name, p.probe.HTTPGet.Path, p.path)
			}
			if got := portOf(c, p.probe.HTTPGet.Port); got != adminPort {
				t.Errorf("deployment.yaml: %s port %d, want the admin port %d", p.name, got, adminPort)
			}
		}
	})

	t.Run("termination grace fits the drain", func(t *testing.T) {
		grace := dep.Spec.Template.Spec.TerminationGracePeriodSeconds
		sleep := 0
		if s := c.Lifecycle.PreStop.Sleep; s != nil {
			sleep = s.Seconds
		}
		if sleep == 0 {
			t.Errorf("deployment.yaml: no preStop sleep; clients keep being sent to a stopping pod until endpoints update")
		}
		need := time.Duration(sleep)*time.Second + shutdownGrace(t)
		if grace == nil || time.Duration(*grace)*time.Second <= need {
			t.Errorf("deployment.yaml: terminationGracePeriodSeconds %v, want more than preStop %ds + drain %v", grace, sleep, shutdownGrace(t))
		}
	})

	t.Run("resources, disruption budget, service", func(t *testing.T) {
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
			t.Errorf("deployment.yaml: container %s requests %v, want cpu and memory", c.Name, c.Resources.Requests)
		}
		if !selects(matchLabels(t, dep), podLabels) {
			t.Errorf("deployment.yaml: selector does not match the pod labels %v", podLabels)
		}
		pdb := object(t, objs, "PodDisruptionBudget/mcproxy")
		if !selects(matchLabels(t, pdb), podLabels) {
			t.Errorf("pdb.yaml: selector does not match mcproxy's pods %v", podLabels)
		}
		if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			t.Errorf("pdb.yaml: neither minAvailable nor maxUnavailable")
		}
		if pdb.Spec.MinAvailable != nil && *pdb.Spec.MinAvailable >= dep.Spec.Replicas {
			t.Errorf("pdb.yaml: minAvailable %d with %d replicas blocks every voluntary eviction", *pdb.Spec.MinAvailable, dep.Spec.Replicas)
		}
		svc := object(t, objs, "Service/mcproxy")
		if !selects(matchLabels(t, svc), podLabels) {
			t.Errorf("service.yaml: selector does not match mcproxy's pods")
		}
		found := false
		for _, p := range svc.Spec.Ports {
			target := portOf(c, p.TargetPort)
			if target == 0 {
				t.Errorf("service.yaml: port %s targets %q, which the container does not declare", p.Name, p.TargetPort.Value)
			}
			found = found || target == listenPort
		}
		if !found {
			t.Errorf("service.yaml: no port reaches the memcached-protocol port %d", listenPort)
		}
	})

	// event_loops 0 means one loop per CPU Go sees: every CPU of the node
	// unless a CPU limit caps GOMAXPROCS. Under a small request and no limit
	// that is a loop per node CPU fighting for a quarter of one.
	t.Run("event loops fit the CPU", func(t *testing.T) {
		if c.Resources.Limits["cpu"] != "" {
			return // Go sets GOMAXPROCS from the limit, and event_loops 0 follows it
		}
		cpus := cpuQuantity(t, c.Resources.Requests["cpu"])
		if cfg.EventLoops < 1 || float64(cfg.EventLoops) > math.Ceil(cpus) {
			t.Errorf("configmap.yaml: event_loops %d with a CPU request of %s and no limit; want 1..%v (one per CPU requested) or a CPU limit",
				cfg.EventLoops, c.Resources.Requests["cpu"], math.Ceil(cpus))
		}
	})

	// The image must come from a registry: the manifests name it "mcproxy",
	// and kustomization.yaml's images: entry says where it is pushed.
	t.Run("image is pulled from a registry", func(t *testing.T) {
		var k struct {
			Images []struct {
				Name    string `yaml:"name"`
				NewName string `yaml:"newName"`
				NewTag  string `yaml:"newTag"`
			} `yaml:"images"`
		}
		decodeFile(t, filepath.Join(kubeDir, "kustomization.yaml"), yaml.Unmarshal, &k)
		for _, im := range k.Images {
			if im.Name != c.Image {
				continue
			}
			if !strings.Contains(im.NewName, "/") {
				t.Errorf("kustomization.yaml: image %s becomes %q, not an image in a registry (registry/name)", im.Name, im.NewName)
			}
			if im.NewTag == "" || im.NewTag == "latest" {
				t.Errorf("kustomization.yaml: image %s tag %q; want a release tag (make docker VERSION=...)", im.Name, im.NewTag)
			}
			return
		}
		t.Errorf("kustomization.yaml: no images: entry for the container image %q", c.Image)
	})

	t.Run("backends are the memcached StatefulSet", func(t *testing.T) {
		sts := object(t, objs, "StatefulSet/memcached")
		headless := object(t, objs, "Service/"+sts.Spec.ServiceName)
		if headless.Spec.ClusterIP != "None" {
			t.Errorf("memcached.yaml: Service %s should be headless (clusterIP: None) so each pod has a DNS name", headless.Metadata.Name)
		}
		if !selects(matchLabels(t, headless), sts.Spec.Template.Metadata.Labels) {
			t.Errorf("memcached.yaml: Service %s does not select the StatefulSet's pods", headless.Metadata.Name)
		}
		mc := sts.Spec.Template.Spec.Containers[0]
		mcPort := commandPort(t, "memcached", yaml.Node{Kind: yaml.SequenceNode, Content: scalars(mc.Args)})
		want := map[string]bool{}
		for i := 0; i < sts.Spec.Replicas; i++ {
			want[net.JoinHostPort(fmt.Sprintf("%s-%d.%s", sts.Metadata.Name, i, headless.Metadata.Name), strconv.Itoa(mcPort))] = true
		}
		checkConfigMapBackends(t, cfg, headless, mcPort, want)
		if !exactMemcachedImage.MatchString(mc.Image) {
			t.Errorf("memcached.yaml: image %q, want an exact release", mc.Image)
		}
	})
}

// checkConfigMapBackends checks that the ConfigMap's backends are the
// StatefulSet's pods: listed (want, by address), or found by the headless
// Service's SRV record, _<port name>._tcp.<service>, the port being
// memcached's.
func checkConfigMapBackends(t *testing.T, cfg config.Config, headless kubeObject, mcPort int, want map[string]bool) {
	t.Helper()
	var found []string
	for _, pl := range cfg.PoolList() {
		if pl.Discover.Set() {
			found = append(found, pl.Discover.SRV)
			continue
		}
		if len(pl.Backends) != len(want) {
			t.Errorf("the ConfigMap's pool %s lists %d backends, the StatefulSet runs %d", pl.Name, len(pl.Backends), len(want))
		}
		for _, b := range pl.Backends {
			if !want[b.Addr] {
				t.Errorf("the ConfigMap's backend %s is not a pod of the StatefulSet (want one of %v)", b.Addr, want)
			}
		}
	}
	for _, srv := range found {
		ok := false
		for _, p := range headless.Spec.Ports {
			name := "_" + p.Name + "._tcp." + headless.Metadata.Name
			if p.Port == mcPort && (srv == name || strings.HasPrefix(srv, name+".")) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the ConfigMap's discover.srv %q is not the SRV record of Service %s's memcached port %d (_<port name>._tcp.%s)",
				srv, headless.Metadata.Name, mcPort, headless.Metadata.Name)
		}
	}
}

func scalars(ss []string) []*yaml.Node {
	out := make([]*yaml.Node, len(ss))
	for i, s := range ss {
		out[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	}
	return out
}

// configMapVolume lays out a directory as the kubelet writes a ConfigMap
// volume: the data in a timestamped directory, "..data" a symlink to it, and
// each key a symlink through "..data".
type configMapVolume struct {
	dir string
	n   int
}

func (v *configMapVolume) write(t *testing.T, key, content string) {
	t.Helper()
	v.n++
	ts := fmt.Sprintf("..2026_11_30_10_00_%02d.%09d", v.n, v.n)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, ts, key), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	// The atomic swap: a new link renamed over ..data.
	if err := os.Symlink(ts, filepath.Join(v.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(v.dir, key)
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(filepath.Join("..data", key), link); err != nil {
			t.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConfigMapUpdateReloads runs a real mcproxy on a directory laid out as
// the kubelet lays out the Deployment's ConfigMap volume, with the -config
// path of the manifest, and swaps in new data as the kubelet does: mcproxy's
// watcher sees each update.
func TestConfigMapUpdateReloads(t *testing.T) {
	kc := loadKubeConfig(t, loadKube(t))
	vol := &configMapVolume{dir: t.TempDir()}
	a, b := memcachedtest.Start(t), memcachedtest.Start(t)
	listen := memcachedtest.FreeAddr(t)
	vol.write(t, kc.key, localConfig(listen, a.Addr))
	cfgPath := filepath.Join(vol.dir, kc.key) // the manifest's -config, under the mount
	if fi, err := os.Lstat(cfgPath); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s should be a symlink through ..data, as the kubelet makes it", cfgPath)
	}
	p := startMcproxy(t, listen, "-config", cfgPath)
	memcachedtest.WaitStat(t, "start", p.Listen, "backends", "1")
	vol.write(t, kc.key, localConfig(listen, a.Addr, b.Addr))
	memcachedtest.WaitStat(t, "first ConfigMap update", p.Listen, "backends", "2")
	vol.write(t, kc.key, localConfig(listen, b.Addr))
	memcachedtest.WaitStat(t, "second ConfigMap update", p.Listen, "backends", "1")
	if got := memcachedtest.Stats(t, listen, "backends"); got["backend:"+b.Addr+":state"] == "" {
		t.Errorf("after the second update the backend is not %s: %v", b.Addr, got)
	}
}
