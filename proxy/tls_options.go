package proxy

import (
	"crypto/tls"
	"sort"
	"time"

	"github.com/mcproxy/mcproxy/internal/tlsfiles"
)

// TLS on both sides of the proxy: the settings (this file), the listener's
// handshakes (tls_listen.go), the backend dial (tls_backend.go) and the
// bridge that puts a TLS connection on an event loop (tls_bridge.go).

// Handshake bound of the TLS listener (config: tls.handshake_timeout).
const (
	// DefaultTLSHandshakeTimeout closes a client whose TLS handshake has
	// not finished after it: a few seconds is ample for a real client and
	// keeps idle TCP connections from holding the TLS port.
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// MinTLSHandshakeTimeout and MaxTLSHandshakeTimeout bound it.
	MinTLSHandshakeTimeout = 100 * time.Millisecond
	MaxTLSHandshakeTimeout = time.Minute
)

// DefaultTLSMinVersion is the oldest TLS version accepted by default, on
// both sides (config: tls.min_version, backend.tls.min_version).
const DefaultTLSMinVersion = "1.2"

// TLSVersions are the spellings of min_version the proxy takes.
var TLSVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// TLSVersionNames lists TLSVersions' keys, sorted, for error messages.
func TLSVersionNames() []string {
	names := make([]string, 0, len(TLSVersions))
	for n := range TLSVersions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TLSServer configures a TLS listener (ServeTLS).
type TLSServer struct {
	// Certs holds the proxy's certificate and key, and, when clients must
	// present a certificate, the CA that signs theirs (Files.CA). The
	// store is read at each handshake, so a reload reaches the next one.
	Certs *tlsfiles.Store
	// MinVersion is a tls.VersionTLS* constant (0: DefaultTLSMinVersion).
	MinVersion uint16
	// HandshakeTimeout closes a client whose handshake has not finished
	// (DefaultTLSHandshakeTimeout).
	HandshakeTimeout time.Duration
}

// BackendTLS makes the proxy speak TLS to its backends (Options.BackendTLS).
type BackendTLS struct {
	// Certs holds the CA that backends' certificates must chain to
	// (Files.CA; the system's roots when empty) and, for backends that
	// require client certificates, the proxy's certificate and key.
	Certs *tlsfiles.Store
	// ServerName is the name checked in the backends' certificates; empty
	// checks each backend's own host (its address without the port).
	ServerName string
	// MinVersion is a tls.VersionTLS* constant (0: DefaultTLSMinVersion).
	MinVersion uint16
}

func minVersionOr(v uint16) uint16 {
	if v == 0 {
		return TLSVersions[DefaultTLSMinVersion]
	}
	return v
}
