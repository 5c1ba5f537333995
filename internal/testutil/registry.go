package testutil

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
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
