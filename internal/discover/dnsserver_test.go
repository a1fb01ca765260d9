package discover

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// answer is what the test DNS server says for one name.
type answer struct {
	mode string // "": the records; "servfail"; "drop" (no reply: a timeout); "empty"
	srv  []net.SRV
	a    []netip.Addr
}

// dnsServer is a tiny UDP DNS server on a free 127.0.0.1 port answering SRV
// and A queries from a table the test changes. Names are fully qualified
// (with the trailing dot); a name not in the table gets NXDOMAIN.
type dnsServer struct {
	conn  net.PacketConn
	mu    sync.Mutex
	table map[string]answer
	done  chan struct{}
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: conn, table: map[string]answer{}, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *dnsServer) addr() string { return s.conn.LocalAddr().String() }

func (s *dnsServer) set(name string, a answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table[name] = a
}

func (s *dnsServer) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if reply := s.reply(buf[:n]); reply != nil {
			s.conn.WriteTo(reply, from)
		}
	}
}

func (s *dnsServer) reply(req []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	s.mu.Lock()
	a, ok := s.table[strings.ToLower(q.Name.String())]
	s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	switch {
	case !ok:
		rh.RCode = dnsmessage.RCodeNameError
	case a.mode == "drop":
		return nil
	case a.mode == "servfail":
		rh.RCode = dnsmessage.RCodeServerFailure
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if ok && a.mode == "" {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
		switch q.Type {
		case dnsmessage.TypeSRV:
			for _, r := range a.srv {
				target := dnsmessage.MustNewName(r.Target)
				b.SRVResource(rr, dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target})
			}
		case dnsmessage.TypeA:
			for _, ip := range a.a {
				if ip.Is4() {
					b.AResource(rr, dnsmessage.AResource{A: ip.As4()})
				}
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
