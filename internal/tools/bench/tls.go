package bench

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles are mcbench's -tls-* flags: the CA to trust and, optionally, a
// client certificate and key.
type TLSFiles struct{ CA, Cert, Key string }

// Config is the client config of the files; nil without a CA (clear text).
// The server name checked is the target's loopback address, 127.0.0.1.
func (f TLSFiles) Config() (*tls.Config, error) {
	if f.CA == "" {
		if f.Cert != "" || f.Key != "" {
			return nil, errors.New("-tls-cert and -tls-key need -tls-ca")
		}
		return nil, nil
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("-tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-tls-ca: %s holds no PEM certificate", f.CA)
	}
	c := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if f.Cert != "" || f.Key != "" {
		kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert, -tls-key: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}
