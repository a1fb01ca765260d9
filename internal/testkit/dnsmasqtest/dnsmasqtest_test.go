package dnsmasqtest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const srvName = "_memcache._tcp." + Zone

func lookup(t *testing.T, s *Server) ([]*net.SRV, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, srvs, err := s.Resolver().LookupSRV(ctx, "", "", srvName)
	return srvs, err
}

// TestRecordsRestartAndKill: the records are answered, a restart answers
// the new ones, a name without records is NXDOMAIN, and a killed server
// answers nothing.
func TestRecordsRestartAndKill(t *testing.T) {
	s := Start(t, Records{SRV: []SRV{{Name: srvName, Target: "mc-0." + Zone, Port: 11311, Weight: 1}},
		A: map[string]string{"mc-0." + Zone: "127.0.0.1"}})
	srvs, err := lookup(t, s)
	if err != nil || len(srvs) != 1 || srvs[0].Target != "mc-0."+Zone+"." || srvs[0].Port != 11311 {
		t.Fatalf("SRV %v, %v", srvs, err)
	}
	ips, err := s.Resolver().LookupNetIP(context.Background(), "ip4", "mc-0."+Zone)
	if err != nil || len(ips) != 1 || ips[0].String() != "127.0.0.1" {
		t.Fatalf("A %v, %v", ips, err)
	}
	s.Restart(t, Records{})
	var dnsErr *net.DNSError
	if _, err := lookup(t, s); err == nil || !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("after a restart without records: %v, want NXDOMAIN", err)
	}
	s.Kill()
	if _, err := lookup(t, s); err == nil || (errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		t.Fatalf("with dnsmasq killed: %v, want no answer", err)
	}
}
