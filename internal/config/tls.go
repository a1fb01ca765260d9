package config

import (
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/internal/tlsfiles"
	"github.com/mcproxy/mcproxy/proxy"
)

// TLS is the clients' TLS listener (the YAML section "tls"), beside or
// instead of the clear-text listen.
type TLS struct {
	// Listen is the TLS listener's address, host:port; empty is none.
	Listen string `yaml:"listen"`
	// CertFile and KeyFile are the proxy's certificate (chain) and key,
	// PEM; required with Listen. They are reloaded when they change.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, makes every client present a certificate
	// this CA bundle (PEM) signed.
	ClientCAFile string `yaml:"client_ca_file"`
	// MinVersion is the oldest TLS version accepted, one of
	// proxy.TLSVersions.
	MinVersion string `yaml:"min_version"`
	// HandshakeTimeout closes a client whose handshake has not finished,
	// proxy.MinTLSHandshakeTimeout..proxy.MaxTLSHandshakeTimeout.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
}

// BackendTLS is TLS from the proxy to every backend (backend.tls).
type BackendTLS struct {
	// Enabled turns it on.
	Enabled bool `yaml:"enabled"`
	// CAFile is the bundle backends' certificates must chain to; empty
	// uses the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the proxy's client certificate and key, for
	// backends that require one; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name backends' certificates must carry; empty is
	// each backend's own host.
	ServerName string `yaml:"server_name"`
	// MinVersion is the oldest TLS version spoken, one of proxy.TLSVersions.
	MinVersion string `yaml:"min_version"`
}

// defaultTLS and defaultBackendTLS are the sections' defaults: off.
func defaultTLS() TLS {
	return TLS{MinVersion: proxy.DefaultTLSMinVersion, HandshakeTimeout: proxy.DefaultTLSHandshakeTimeout}
}

func defaultBackendTLS() BackendTLS { return BackendTLS{MinVersion: proxy.DefaultTLSMinVersion} }

// Files are the listener's files, for tlsfiles.
func (t TLS) Files() tlsfiles.Files {
	return tlsfiles.Files{Cert: t.CertFile, Key: t.KeyFile, CA: t.ClientCAFile}
}

// Files are the backend side's files, for tlsfiles.
func (t BackendTLS) Files() tlsfiles.Files {
	return tlsfiles.Files{Cert: t.CertFile, Key: t.KeyFile, CA: t.CAFile}
}

// tlsFields maps the keys of the tls section.
func (p *parser) tlsFields(t *TLS) field {
	return p.section(map[string]field{
		"listen":            p.str(&t.Listen),
		"cert_file":         p.str(&t.CertFile),
		"key_file":          p.str(&t.KeyFile),
		"client_ca_file":    p.str(&t.ClientCAFile),
		"min_version":       p.str(&t.MinVersion),
		"handshake_timeout": p.duration(&t.HandshakeTimeout),
	})
}

// backendTLSFields maps the keys of backend.tls.
func (p *parser) backendTLSFields(t *BackendTLS) field {
	return p.section(map[string]field{
		"enabled":     p.boolean(&t.Enabled),
		"ca_file":     p.str(&t.CAFile),
		"cert_file":   p.str(&t.CertFile),
		"key_file":    p.str(&t.KeyFile),
		"server_name": p.str(&t.ServerName),
		"min_version": p.str(&t.MinVersion),
	})
}

// tls checks both TLS sections. The files are read here, so that a
// missing or bad certificate is a config error at load (and in -check),
// not a failure at the first handshake.
func (v *validator) tls(c Config) {
	t := c.TLS
	if t.Listen != "" {
		if canon, ok := v.addr("tls.listen", t.Listen, true); ok && c.Listen != "" {
			if other, ok2 := v.addr("listen", c.Listen, true); ok2 && other == canon {
				v.errorf("tls.listen", "%s is also listen: the TLS listener needs a port of its own", t.Listen)
			}
		}
		for _, k := range []struct{ key, val string }{{"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}} {
			if k.val == "" && !v.skip(k.key) {
				v.errorf(k.key, "required with tls.listen: the proxy's certificate and key (PEM)")
			}
		}
		if t.CertFile != "" && t.KeyFile != "" {
			v.files("tls.cert_file", t.Files())
		}
	} else {
		for _, k := range []struct{ key, val string }{
			{"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}, {"tls.client_ca_file", t.ClientCAFile},
		} {
			if k.val != "" && !v.skip(k.key) {
				v.errorf(k.key, "is set but tls.listen is not: set tls.listen to serve TLS")
			}
		}
	}
	v.tlsVersion("tls.min_version", t.MinVersion)
	if d := t.HandshakeTimeout; !v.skip("tls.handshake_timeout") &&
		(d < proxy.MinTLSHandshakeTimeout || d > proxy.MaxTLSHandshakeTimeout) {
		v.errorf("tls.handshake_timeout", "%v is out of range %v..%v", d, proxy.MinTLSHandshakeTimeout, proxy.MaxTLSHandshakeTimeout)
	}

	v.backendTLS("backend.tls", c.Backend.TLS)
}

// backendTLS checks a backend TLS section, backend.tls or a pool's own
// (pools.<name>.tls), whose dotted key is key.
func (v *validator) backendTLS(key string, b BackendTLS) {
	v.tlsVersion(key+".min_version", b.MinVersion)
	if (b.CertFile == "") != (b.KeyFile == "") && !v.skip(key+".cert_file") && !v.skip(key+".key_file") {
		v.errorf(key+".cert_file", "%[1]s.cert_file and %[1]s.key_file go together: set both or neither", key)
		return
	}
	if !b.Enabled {
		if b.CAFile != "" || b.CertFile != "" || b.ServerName != "" {
			v.errorf(key+".enabled", "is false but other %s keys are set: set enabled: true to speak TLS to the backends", key)
		}
		return
	}
	v.files(key+".ca_file", b.Files())
}

// files reads a set of TLS files as the proxy will, reporting a failure
// under key.
func (v *validator) files(key string, f tlsfiles.Files) {
	if v.skip(key) {
		return
	}
	if _, err := tlsfiles.Open(f); err != nil {
		v.errorf(key, "%v", err)
	}
}

// tlsVersion checks a min_version.
func (v *validator) tlsVersion(key, s string) {
	if _, ok := proxy.TLSVersions[s]; !ok && !v.skip(key) {
		v.errorf(key, "%q is not a TLS version mcproxy accepts: one of %s", s, strings.Join(proxy.TLSVersionNames(), ", "))
	}
}
