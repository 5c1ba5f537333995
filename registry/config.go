package registry

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is cairn's registry configuration, /etc/cairn/config.json, with
// the meaning of Docker's daemon.json:
//
//	{"registry-mirrors": ["https://mirror.example"], "insecure-registries": ["10.0.0.0/8", "myreg:5000"]}
//
// Mirrors serve Docker Hub's images: a pull of docker.io/... tries them in
// order, then Docker Hub. An insecure registry may answer in plain HTTP,
// or over TLS that is not verified. Registries on loopback addresses are
// insecure by default, as in Docker.
//
// A registry's own CA, as Docker's certs.d: <dir of the config>/certs.d/<host[:port]>/ca.crt.
type Config struct {
	Mirrors  []string `json:"registry-mirrors,omitempty"`
	Insecure []string `json:"insecure-registries,omitempty"`
	certsDir string
}

// LoadConfig reads the configuration at path; a missing file is the
// default configuration.
func LoadConfig(path string) (*Config, error) {
	c := &Config{certsDir: filepath.Join(filepath.Dir(path), "certs.d")}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, m := range c.Mirrors {
		if !strings.HasPrefix(m, "http://") && !strings.HasPrefix(m, "https://") {
			return nil, fmt.Errorf("%s: registry mirror %q: must begin with http:// or https://", path, m)
		}
	}
	return c, nil
}

// insecure reports whether host (host[:port]) is an insecure registry.
func (c *Config) insecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	ip := net.ParseIP(h)
	if h == "localhost" || ip != nil && ip.IsLoopback() {
		return true
	}
	for _, e := range c.Insecure {
		if e == host || e == h {
			return true
		}
		if _, cidr, err := net.ParseCIDR(e); err == nil && ip != nil && cidr.Contains(ip) {
			return true
		}
	}
	return false
}

// transport is the HTTP transport for host: its CA from certs.d, no TLS
// verification for an insecure registry.
func (c *Config) transport(host string) (http.RoundTripper, error) {
	return c.transportFor(host, c.insecure(host))
}

func (c *Config) transportFor(host string, insecure bool) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 2 * time.Minute
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if dir := filepath.Join(c.certsDir, host); dirExists(dir) {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".crt") {
				pem, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					return nil, err
				}
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("%s: no certificate in it", filepath.Join(dir, e.Name()))
				}
			}
		}
		tc.RootCAs = pool
	}
	if insecure {
		tc.InsecureSkipVerify = true
	}
	t.TLSClientConfig = tc
	return t, nil
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
