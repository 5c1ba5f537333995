package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// psNames is `ps -a`'s names, sorted.
func psNames(t *testing.T, s *store) []string {
	t.Helper()
	names := strings.Fields(s.ok("ps", "-a", "--format", "{{.Names}}"))
	slices.Sort(names)
	return names
}

// While containers are created, renamed and removed, each `ps -a` and
// `inspect` sees every container that stays, once and as it is, whatever
// the listing caches of the run directory hold (they are read, written
// again by every list, and, at the end, garbage); a name freed by a
// removal is free at once for a create.
func TestPsListsWhileContainersComeAndGo(t *testing.T) {
	s := newStore(t)
	s.ok("import", writeFile(t, layerTar(t, file("f", "x"))), "listed:1")
	var stable []string
	for i := 0; i < 10; i++ {
		stable = append(stable, fmt.Sprintf("stable-%d", i))
		s.ok("create", "--network", "none", "--name", stable[i], "listed:1", "true")
	}
	// Settled (see runtime/listing.go): the next list caches them.
	time.Sleep(2500 * time.Millisecond)
	if got := psNames(t, s); !slices.Equal(got, stable) {
		t.Fatalf("ps -a: %v, want %v", got, stable)
	}
	if _, err := os.Stat(filepath.Join(s.runDir(), "cache", "containers")); err != nil {
		t.Fatalf("no listing cache: %v", err)
	}
	// A stable container renamed (a new record over the cached one).
	s.ok("rename", "stable-3", "stable-3b")
	stable[3] = "stable-3b"
	slices.Sort(stable)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("churn-%d-%d", w, i%3)
				if r := s.run(nil, "create", "--network", "none", "--name", name, "listed:1", "true"); r.Code != 0 {
					t.Errorf("create %s: %s", name, r.Stderr)
					return
				}
				if r := s.run(nil, "rm", name); r.Code != 0 {
					t.Errorf("rm %s: %s", name, r.Stderr)
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(8 * time.Second)
	for lists := 0; time.Now().Before(deadline); lists++ {
		var kept []string
		for _, n := range psNames(t, s) {
			if !strings.HasPrefix(n, "churn-") {
				kept = append(kept, n)
			}
		}
		if !slices.Equal(kept, stable) {
			t.Fatalf("ps -a %d while others come and go: %v, want %v among them", lists, kept, stable)
		}
		if out := s.ok("inspect", "--format", "{{.Name}} {{.State.Status}}", "stable-3b"); out != "/stable-3b created\n" {
			t.Fatalf("inspect stable-3b: %q", out)
		}
		if r := s.run(nil, "inspect", "stable-3"); r.Code == 0 {
			t.Fatal("inspect finds stable-3 by its old name")
		}
	}
	close(stop)
	wg.Wait()
	if got := psNames(t, s); !slices.Equal(got, stable) {
		t.Fatalf("ps -a after: %v, want %v", got, stable)
	}
	// Caches that do not decode are no caches.
	for _, f := range []string{"containers", "container-heads", "image-index", "image-manifests", "image-configs", "layer-sizes"} {
		if err := os.WriteFile(filepath.Join(s.runDir(), "cache", f), []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := psNames(t, s); !slices.Equal(got, stable) {
		t.Fatalf("ps -a with garbage caches: %v, want %v", got, stable)
	}
	if out := s.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); out != "listed:1\n" {
		t.Fatalf("images with garbage caches: %q", out)
	}
	s.ok("create", "--network", "none", "--name", "churn-0-0", "listed:1", "true")
}
