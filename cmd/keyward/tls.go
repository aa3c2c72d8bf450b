package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// modernCipherSuites are the TLS 1.2 suites served: forward-secret ECDHE
// with an AEAD only. TLS 1.3 chooses its own, all of them modern.
var modernCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// tlsFiles are where the server's certificate, its key and the optional
// client CA are read from.
type tlsFiles struct{ cert, key, clientCA string }

// certReloader serves the current certificate and client CA, both swapped
// atomically by reload: handshakes in flight and open connections keep what
// they started with, new handshakes get the new pair.
type certReloader struct {
	mu    sync.Mutex // serialises reloads
	files tlsFiles
	cert  atomic.Pointer[tls.Certificate]
	mtls  atomic.Pointer[tls.Config] // nil: no client certificates asked for
}

func newCertReloader(files tlsFiles) (*certReloader, error) {
	r := &certReloader{}
	if err := r.reload(files); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads files and, only if all of them are good, starts serving
// them; otherwise what was served goes on being served.
func (r *certReloader) reload(files tlsFiles) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if files.cert == "" || files.key == "" {
		return errors.New("--tls-cert and --tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(files.cert, files.key)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	var mtls *tls.Config
	if files.clientCA != "" {
		pem, err := os.ReadFile(files.clientCA)
		if err != nil {
			return fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--tls-client-ca: no PEM certificate in %s", files.clientCA)
		}
		mtls = r.baseConfig()
		// Asked for, not required, at the handshake: the health probes and
		// the vendor surfaces stay reachable without one, and the native
		// API refuses a request without a verified one (httpapi).
		mtls.ClientAuth = tls.VerifyClientCertIfGiven
		mtls.ClientCAs = pool
	}
	r.cert.Store(&pair)
	r.mtls.Store(mtls)
	r.files = files
	return nil
}

func (r *certReloader) baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   modernCipherSuites,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.cert.Load(), nil },
	}
}

// config is the server's TLS configuration.
func (r *certReloader) config() *tls.Config {
	c := r.baseConfig()
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.mtls.Load(), nil }
	return c
}

// clientCertRequired tells whether the native API wants a client certificate.
func (r *certReloader) clientCertRequired() bool { return r.mtls.Load() != nil }

// current is what is being served.
func (r *certReloader) current() tlsFiles {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files
}
