package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns a PEM certificate and key for 127.0.0.1 (server) or a
// client, named cn.
func (ca *testCA) issue(t *testing.T, cn string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if client {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startServeReloading is startServe that also hands back the outcome of
// each SIGHUP reload, and the bare listening address.
func startServeReloading(t *testing.T, args ...string) (string, *syncBuffer, <-chan error) {
	t.Helper()
	stderr := &syncBuffer{}
	ready := make(chan string, 1)
	reloaded := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	ctx = withReloaded(withReady(ctx, ready), reloaded)
	root := newRootCommand(io.Discard, stderr)
	root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0"}, args...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve exited with %v", err)
		}
	})
	select {
	case addr := <-ready:
		return addr, stderr, reloaded
	case err := <-done:
		t.Fatalf("serve exited before it was ready: %v\n%s", err, stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("serve not ready after 10 s\n%s", stderr)
	}
	return "", nil, nil
}

// hangUp sends this process a real SIGHUP, which the serve under test
// catches, and returns the outcome of its reload.
func hangUp(t *testing.T, reloaded <-chan error, stderr *syncBuffer) error {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reloaded:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("no reload 10 s after SIGHUP\n%s", stderr)
	}
	return nil
}

func servedName(t *testing.T, addr string, conf *tls.Config) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestServeHTTPSServesOnlyModernTLSAndSwapsTheCertificateOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "test ca")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c, k := ca.issue(t, "first", false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	addr, stderr, reloaded := startServeReloading(t, "--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool(), MinVersion: v, MaxVersion: v})
		if err != nil {
			t.Fatalf("%s refused: %v", tls.VersionName(v), err)
		}
		st := conn.ConnectionState()
		conn.Close()
		if v == tls.VersionTLS12 && !slices.Contains(modernCipherSuites, st.CipherSuite) {
			t.Fatalf("TLS 1.2 negotiated %s", tls.CipherSuiteName(st.CipherSuite))
		}
	}
	refused := map[string]*tls.Config{
		"TLS 1.1": {RootCAs: ca.pool(), MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11},
		"TLS 1.2 with CBC suites only": {RootCAs: ca.pool(), MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}},
	}
	for name, conf := range refused {
		if conn, err := tls.Dial("tcp", addr, conf); err == nil {
			conn.Close()
			t.Fatalf("%s was accepted", name)
		}
	}

	// A keep-alive connection opened before the rotation.
	kept := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
	getOnKept := func() (reused bool, cn string) {
		t.Helper()
		var info httptrace.GotConnInfo
		req, _ := http.NewRequest("GET", "https://"+addr+"/healthz", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { info = i }}))
		resp, err := kept.Do(req)
		if err != nil {
			t.Fatalf("GET /healthz over HTTPS: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /healthz: %d", resp.StatusCode)
		}
		return info.Reused, resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if _, cn := getOnKept(); cn != "first" {
		t.Fatalf("served %q, want first", cn)
	}

	c, k = ca.issue(t, "second", false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	if err := hangUp(t, reloaded, stderr); err != nil {
		t.Fatalf("reload of a good pair failed: %v", err)
	}
	if reused, cn := getOnKept(); !reused || cn != "first" {
		t.Fatalf("the open connection was dropped by the reload (reused %v, cert %q)", reused, cn)
	}
	if cn := servedName(t, addr, &tls.Config{RootCAs: ca.pool()}); cn != "second" {
		t.Fatalf("a new connection after SIGHUP got %q, want second", cn)
	}

	// A broken pair is refused and the good one goes on being served.
	writeFile(t, certFile, []byte("not a certificate"))
	if err := hangUp(t, reloaded, stderr); err == nil {
		t.Fatal("a broken certificate file reloaded without error")
	}
	if cn := servedName(t, addr, &tls.Config{RootCAs: ca.pool()}); cn != "second" {
		t.Fatalf("after a failed reload a new connection got %q, want second", cn)
	}
	if !strings.Contains(stderr.String(), "reload failed") {
		t.Fatalf("the failed reload was not logged:\n%s", stderr)
	}
}

func TestServeWithAClientCAWantsAClientCertificateOnTheNativeAPIOnly(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, rogueCA := newTestCA(t, "server ca"), newTestCA(t, "client ca"), newTestCA(t, "rogue ca")
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "client-ca.crt")
	c, k := serverCA.issue(t, "server", false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	writeFile(t, caFile, clientCA.pem)
	admin := credential.MustGenerate(credential.KindAdminKey).Reveal()
	t.Setenv("KEYWARD_BOOTSTRAP_ADMIN_KEY", admin)
	addr, _, _ := startServeReloading(t, "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", caFile)

	// clientWith presents a certificate from ca (none when nil), even one
	// the server's list of acceptable CAs does not name.
	clientWith := func(ca *testCA) *http.Client {
		conf := &tls.Config{RootCAs: serverCA.pool()}
		if ca != nil {
			cp, kp := ca.issue(t, "operator", true)
			pair, err := tls.X509KeyPair(cp, kp)
			if err != nil {
				t.Fatal(err)
			}
			conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
	}
	status := func(client *http.Client, path string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := client.Do(req)
		if err != nil {
			return 0 // refused at the handshake
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := map[string]struct {
		client *http.Client
		path   string
		want   int
	}{
		"admin API with a client certificate from the CA":      {clientWith(clientCA), "/v1/caller", 200},
		"admin API without a client certificate is refused":    {clientWith(nil), "/v1/caller", 401},
		"another CA's certificate is refused at the handshake": {clientWith(rogueCA), "/healthz", 0},
		"health probe without a client certificate":            {clientWith(nil), "/healthz", 200},
		"readiness probe without a client certificate":         {clientWith(nil), "/readyz", 200},
		"vendor surface without a client certificate":          {clientWith(nil), "/clerk/v1/machines", 200},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := status(tc.client, tc.path); got != tc.want {
				t.Fatalf("GET %s: %d, want %d", tc.path, got, tc.want)
			}
		})
	}
}

func TestServeRefusesIncompleteTLSSettings(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "ca")
	c, k := ca.issue(t, "server", false)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	cases := map[string][]string{
		"a certificate without its key":       {"--tls-cert", certFile},
		"a client CA without a certificate":   {"--tls-client-ca", certFile},
		"a key that is not the certificate's": {"--tls-cert", certFile, "--tls-key", certFile},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			root := newRootCommand(io.Discard, io.Discard)
			root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data")}, args...))
			if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--tls-") {
				t.Fatalf("want a --tls-… error, got %v", err)
			}
		})
	}
}
