package textclient

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ResolveLoopback checks that addr ("host:port") names a loopback target and
// returns the "ip:port" to dial. The host must be an IP literal in
// 127.0.0.0/8 or ::1 (IPv4-mapped forms included), or "localhost", which is
// taken as 127.0.0.1 without asking a resolver (RFC 6761), so no hosts-file or
// DNS answer can point a load test at another machine. Every other host,
// including an empty one or 0.0.0.0, is refused.
func ResolveLoopback(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("target %q: want host:port: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("target %q: port must be a number from 1 to 65535", addr)
	}
	var ip net.IP
	switch h := strings.ToLower(host); h {
	case "localhost", "localhost.":
		ip = net.IPv4(127, 0, 0, 1)
	default:
		ip = net.ParseIP(h)
		if ip == nil {
			return "", fmt.Errorf("target %q: host must be a loopback IP (127.0.0.0/8, ::1) or localhost; refusing to send load elsewhere", addr)
		}
	}
	if !ip.IsLoopback() {
		return "", fmt.Errorf("target %q: %s is not a loopback address (127.0.0.0/8, ::1); refusing to send load elsewhere", addr, ip)
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(p)), nil
}
