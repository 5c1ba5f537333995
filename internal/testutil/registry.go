package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// DefaultRegistry is where hack/registry start serves the test registry.
const DefaultRegistry = "127.0.0.1:5000"

func registryAddr() string {
	if a := os.Getenv("CAIRN_TEST_REGISTRY"); a != "" {
		return a
	}
	return DefaultRegistry
}

var registryPing = sync.OnceValue(func() error {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + registryAddr() + "/v2/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v2/: %s", resp.Status)
	}
	return nil
})

// Registry returns the address (host:port, plain HTTP) of the test registry:
// DefaultRegistry, or the environment variable CAIRN_TEST_REGISTRY. The test
// stops (Fatalf under CI, Skipf elsewhere) if it does not answer on /v2/;
// start it with `hack/registry start`.
//
// The registry is shared by every test binary of a run: use repository names
// that are unique to the test.
func Registry(t testing.TB) string {
	t.Helper()
	if err := registryPing(); err != nil {
		unmet(t, "requires the test registry at %s (run hack/registry start): %v", registryAddr(), err)
	}
	return registryAddr()
}

// RegistryOptions configure a registry started by StartRegistry.
type RegistryOptions struct {
	// User and Password, if set, turn on htpasswd basic authentication.
	User, Password string
	// TLS serves HTTPS with a certificate for 127.0.0.1 from a CA made for
	// the registry (RegistryServer.CA).
	TLS bool
	// Dir is where it keeps its storage and configuration; empty: a
	// directory of the test's, removed at its end.
	Dir string
}

// RegistryServer is a docker-registry of one test.
type RegistryServer struct {
	Addr string // 127.0.0.1:port
	CA   []byte // PEM of the CA that signed its certificate, with TLS
	Dir  string // its storage and configuration
	cmd  *exec.Cmd
}

// StartRegistry starts Debian's docker-registry on a free loopback port,
// for this test only, and stops it (by its pid) when the test ends.
func StartRegistry(t testing.TB, o RegistryOptions) *RegistryServer {
	t.Helper()
	RequiresTool(t, "docker-registry")
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &RegistryServer{Addr: addr, Dir: dir}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "storage"), addr)
	if o.TLS {
		ca, cert, key, err := testCertificates()
		if err != nil {
			t.Fatal(err)
		}
		r.CA = ca
		must(t, os.WriteFile(filepath.Join(dir, "cert.pem"), cert, 0o600))
		must(t, os.WriteFile(filepath.Join(dir, "key.pem"), key, 0o600))
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	}
	if o.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		must(t, os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(o.User+":"+string(hash)+"\n"), 0o600))
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: cairn-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	must(t, os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600))
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	r.cmd = exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scheme := "http"
	if o.TLS {
		scheme = "https"
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(scheme + "://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return r
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry on %s did not answer in 20s: %v\n%s", addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the registry, by its pid.
func (r *RegistryServer) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testCertificates makes a CA and a server certificate for 127.0.0.1 and
// localhost, valid for a day; PEM encoded.
func testCertificates() (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cairn test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}
