package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// How `cairn system service` listens (cmd/cairn/service.go): on TCP only
// when asked, and then only with TLS that verifies the client's
// certificate; on a socket systemd passes it (contrib/systemd).

// tlsFiles are the paths of a CA, a certificate it signed and its key.
type tlsFiles struct{ ca, cert, key string }

// testPKI makes a CA in dir and, signed by it, a server certificate for
// 127.0.0.1 and a client certificate.
func testPKI(t *testing.T, dir string) (server, client tlsFiles) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		must(os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cairn test CA " + filepath.Base(dir)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	caPath := write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) tlsFiles {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		must(err)
		kb, err := x509.MarshalECPrivateKey(key)
		must(err)
		return tlsFiles{ca: caPath, cert: write(name+"-cert.pem", "CERTIFICATE", der), key: write(name+"-key.pem", "EC PRIVATE KEY", kb)}
	}
	return leaf("server", 2, x509.ExtKeyUsageServerAuth), leaf("client", 3, x509.ExtKeyUsageClientAuth)
}

// tcp:// is served only with --tlsverify and the three files (the service
// names what is missing); then the docker clients with a certificate of
// the CA reach it, and one without a certificate, with one of another CA,
// or without TLS, is refused.
func TestAPIServiceTLS(t *testing.T) {
	s := newStore(t)
	port := freePort(t)
	addr := "tcp://127.0.0.1:" + strconv.Itoa(port)
	server, client := testPKI(t, t.TempDir())
	_, rogue := testPKI(t, t.TempDir())

	s.fails(125, "missing --tlsverify, --tlscacert, --tlscert, --tlskey", "system", "service", addr)
	s.fails(125, "missing --tlscert, --tlskey", "system", "service", "--tlsverify", "--tlscacert", server.ca, addr)
	s.fails(125, "missing --tlsverify", "system", "service", "--tlscacert", server.ca, "--tlscert", server.cert, "--tlskey", server.key, addr)
	s.fails(125, "TLS flags are for a tcp:// listener", "system", "service", "--tlsverify", "unix://"+filepath.Join(t.TempDir(), "d.sock"))

	bg := s.start("system", "service", "--time", "0", "--tlsverify", "--tlscacert", server.ca, "--tlscert", server.cert, "--tlskey", server.key, addr)
	t.Cleanup(func() { bg.cmd.Process.Signal(syscall.SIGTERM) })
	waitFor(t, 10*time.Second, "the TLS listener", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	run := func(bin string, args ...string) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := dockerCmd(ctx, t, bin, addr, args...)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}
	for _, bin := range dockerClients(t) {
		if out, stderr, code := run(bin, "--tlsverify", "--tlscacert", client.ca, "--tlscert", client.cert, "--tlskey", client.key,
			"version", "--format", "{{.Server.APIVersion}}"); code != 0 || out != "1.41\n" {
			t.Errorf("%s version over TLS with a client certificate: exit %d %q %q", bin, code, out, stderr)
		}
		for _, c := range []struct {
			what string
			args []string
			want string
		}{
			{"no client certificate", []string{"--tlsverify", "--tlscacert", client.ca}, "certificate required"},
			{"no certificate, the server unverified", []string{"--tls", "--tlscacert", client.ca}, "certificate required"},
			// Go's client does not offer a certificate the server's CAs did not sign.
			{"a certificate of another CA", []string{"--tlsverify", "--tlscacert", client.ca, "--tlscert", rogue.cert, "--tlskey", rogue.key}, "certificate required"},
			{"no TLS", nil, "Client sent an HTTP request to an HTTPS server"},
		} {
			out, stderr, code := run(bin, append(c.args, "version", "--format", "{{.Server.APIVersion}}")...)
			if code == 0 || strings.Contains(out, "1.41") || !strings.Contains(stderr, c.want) {
				t.Errorf("%s with %s: exit %d %q %q, want a refusal with %q", bin, c.what, code, out, stderr, c.want)
			}
		}
	}
	// A client that offers that certificate all the same is refused by the
	// service's verification.
	cert, err := tls.LoadX509KeyPair(rogue.cert, rogue.key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(client.ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}}}
	if resp, err := hc.Get("https://127.0.0.1:" + strconv.Itoa(port) + "/_ping"); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
		if resp != nil {
			resp.Body.Close()
		}
		t.Errorf("a client certificate of another CA: %v, want unknown certificate authority", err)
	}
	if strings.Contains(bg.stderr.String(), "panic") {
		t.Errorf("service stderr: %s", bg.stderr.String())
	}
}

// Started as systemd starts it from cairn.socket — the listening socket as
// fd 3, LISTEN_FDS=1 and LISTEN_PID its own pid — the service serves that
// socket, and on its idle exit leaves it to its owner, whose next start of
// the service serves it again.
func TestAPIServiceSocketActivation(t *testing.T) {
	s := newStore(t)
	path := filepath.Join(t.TempDir(), "activated.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // the test holds the socket, as systemd does
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for round := 1; round <= 2; round++ {
		bg := activateWith(t, s, f, "system", "service", "--time", "2")
		for _, bin := range dockerClients(t) {
			if out, stderr, code := dockerAt(t, bin, path, "version", "--format", "{{.Server.APIVersion}}"); code != 0 || out != "1.41\n" {
				t.Errorf("round %d: %s version on the activated socket: exit %d %q %q (service: %s)", round, bin, code, out, stderr, bg.stderr.String())
			}
		}
		if code := bg.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("round %d: the activated service's idle exit: %d, %s", round, code, bg.stderr.String())
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("round %d: the service removed the socket systemd owns: %v", round, err)
		}
	}
	// An address beside an activated socket is refused, not ignored.
	bg := activateWith(t, s, f, "system", "service", "unix://"+filepath.Join(t.TempDir(), "other.sock"))
	if code := bg.wait(t, 30*time.Second); code != 125 || !strings.Contains(bg.stderr.String(), "give it no address") {
		t.Errorf("activated with an address: exit %d, %s", code, bg.stderr.String())
	}
}

// activateWith starts cairn with args as systemd would with the listening
// socket f: as fd 3, LISTEN_FDS=1, LISTEN_PID the pid of cairn itself (sh
// sets it to its own, then execs cairn in its place).
func activateWith(t *testing.T, s *store, f *os.File, args ...string) *background {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`, cairnBin, "--root", s.root}, args...)...)
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f}
	bg := &background{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = bg.stdout, bg.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(bg.done) }()
	t.Cleanup(func() {
		select {
		case <-bg.done:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-bg.done:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-bg.done
			}
		}
	})
	return bg
}
