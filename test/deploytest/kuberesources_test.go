package deploytest

import (
	"strconv"
	"strings"
	"testing"
)

// memoryQuantity parses a Kubernetes memory quantity in bytes: "96Mi",
// "1Gi", "500M", "1048576".
func memoryQuantity(t *testing.T, q string) int64 {
	t.Helper()
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"", 1}} {
		if n, ok := strings.CutSuffix(q, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("memory quantity %q: %v", q, err)
			}
			return v * u.mult
		}
	}
	return 0 // not reached: "" matches every quantity
}

// checkResources: a container requests CPU and memory, has a memory limit
// no lower than its request (the OOM killer's line must lie above what the
// scheduler reserved) and no CPU limit (CFS throttling stalls an event
// loop, and memcached's workers, for the rest of a 100 ms period).
func checkResources(t *testing.T, file string, c kubeContainer) (cpu float64, mem, memLimit int64) {
	t.Helper()
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req["cpu"] == "" || req["memory"] == "" || lim["memory"] == "" {
		t.Fatalf("%s: container %s requests %v, limits %v; want cpu and memory requests and a memory limit", file, c.Name, req, lim)
	}
	if lim["cpu"] != "" {
		t.Errorf("%s: container %s has a CPU limit %s; throttling stalls every client of a loop", file, c.Name, lim["cpu"])
	}
	cpu, mem, memLimit = cpuQuantity(t, req["cpu"]), memoryQuantity(t, req["memory"]), memoryQuantity(t, lim["memory"])
	if cpu <= 0 || mem <= 0 {
		t.Errorf("%s: container %s requests %v; want both above 0", file, c.Name, req)
	}
	if memLimit < mem {
		t.Errorf("%s: container %s memory limit %s below its request %s", file, c.Name, lim["memory"], req["memory"])
	}
	return cpu, mem, memLimit
}

// TestKubernetesResources: the requests and limits of mcproxy and memcached
// are present and agree with each other and with what the containers are
// told to use (docs/operations.md, "Kubernetes": how they were derived).
func TestKubernetesResources(t *testing.T) {
	objs := loadKube(t)
	kc := loadKubeConfig(t, objs)
	cpu, _, memLimit := checkResources(t, "deployment.yaml", kc.container)
	// The measured memory (docs/operations.md, "Kubernetes"): 18 MiB at start
	// and about 7 KiB per client connection; the limit must hold every
	// connection the config admits.
	const baseRSS, perConn = 18 << 20, 7 << 10
	if conns := int64(kc.cfg.Limits.MaxConnections); conns > 0 && memLimit < baseRSS+conns*perConn {
		t.Errorf("deployment.yaml: memory limit %s below 18 MiB + 7 KiB x limits.max_connections %d (%d MiB)",
			kc.container.Resources.Limits["memory"], conns, (baseRSS+conns*perConn)>>20)
	}
	// The event loops are sized to the CPU request (kubernetes_test.go checks
	// event_loops <= ceil(cpu)); a request below a quarter CPU would leave
	// the loop starved under the design load.
	if cpu < 0.25 {
		t.Errorf("deployment.yaml: CPU request %v below 250m, the design load's share (docs/operations.md)", cpu)
	}

	sts := object(t, objs, "StatefulSet/memcached")
	for _, c := range sts.Spec.Template.Spec.Containers {
		_, mem, _ := checkResources(t, "memcached.yaml", c)
		cache := flagValue(c.Args, "m")
		if cache == "" {
			t.Errorf("memcached.yaml: container %s args %q have no -m: its memory would be memcached's default, not the request's", c.Name, c.Args)
			continue
		}
		mb, err := strconv.ParseInt(cache, 10, 64)
		if err != nil {
			t.Fatalf("memcached.yaml: -m %q: %v", cache, err)
		}
		// memcached's own use beyond the cache: connection buffers, the hash
		// table, threads; about a quarter more at these sizes.
		if mem < mb<<20+mb<<20/4 {
			t.Errorf("memcached.yaml: memory request %s below -m %d MB plus a quarter for memcached's own use", c.Resources.Requests["memory"], mb)
		}
	}
}
