package integration

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-runtime/cairn/internal/tartest"
)

// Eight cairn load/rmi/tag at once on one store leave it consistent, with
// every operation's effect in place.
func TestConcurrentLoadRmiTag(t *testing.T) {
	s := newStore(t)
	base := layerTar(t, dir("usr/"), file("usr/base", strings.Repeat("b", 50000)))
	mk := func(name string) fixtureImage {
		var files []tartest.Entry
		for i := 0; i < 200; i++ {
			files = append(files, file(fmt.Sprintf("%s-%d", name, i), strings.Repeat(name, 100)))
		}
		return fixtureImage{Names: []string{name + ":1"}, Layers: [][]byte{base, layerTar(t, files...)}}
	}
	for round := 0; round < 3; round++ {
		r := fmt.Sprint(round)
		a, e, f := mk("a"+r), mk("e"+r), mk("f"+r)
		s.ok("load", "-i", writeFile(t, dockerArchive(t, a)))
		s.ok("load", "-i", writeFile(t, dockerArchive(t, e, f)))
		jobs := [][]string{
			{"load", "-i", writeFile(t, dockerArchive(t, mk("b"+r)))},
			{"load", "-i", writeFile(t, dockerArchive(t, mk("c"+r)))},
			{"load", "-i", writeFile(t, dockerArchive(t, mk("d"+r)))},
			{"load", "-i", writeFile(t, dockerArchive(t, a))},
			{"tag", "a" + r + ":1", "t1-" + r},
			{"tag", "a" + r + ":1", "t2-" + r},
			{"rmi", "e" + r + ":1"},
			{"rmi", "f" + r + ":1"},
		}
		var wg sync.WaitGroup
		results := make([]result, len(jobs))
		for i, j := range jobs {
			wg.Add(1)
			go func(i int, j []string) {
				defer wg.Done()
				results[i] = s.run(nil, j...)
			}(i, j)
		}
		wg.Wait()
		for i, res := range results {
			if res.Code != 0 {
				t.Fatalf("round %d: cairn %s: exit %d: %s", round, strings.Join(jobs[i], " "), res.Code, res.Stderr)
			}
		}
		s.checkConsistent()
		names := s.ok("images", "--format", "{{.Repository}}:{{.Tag}}")
		for _, want := range []string{"a" + r + ":1", "b" + r + ":1", "c" + r + ":1", "d" + r + ":1", "t1-" + r + ":latest", "t2-" + r + ":latest"} {
			if !strings.Contains(names, want) {
				t.Fatalf("round %d: %s missing from\n%s", round, want, names)
			}
		}
		for _, gone := range []string{"e" + r + ":1", "f" + r + ":1"} {
			if strings.Contains(names, gone) {
				t.Fatalf("round %d: %s still listed", round, gone)
			}
		}
	}
	// Every snapshot is used: the base, and one top per image left (a, b, c, d per round).
	if n := len(s.snapshotIDs()); n != 1+4*3 {
		s.ok("image", "prune", "-f")
		if n2 := len(s.snapshotIDs()); n2 != 1+4*3 {
			t.Fatalf("%d snapshots (%d after prune), want %d", n, n2, 1+4*3)
		}
	}
}

// A load killed with SIGKILL at any moment leaves no image or snapshot half-made,
// and the same load run again succeeds.
func TestLoadKilledAnyMoment(t *testing.T) {
	s := newStore(t)
	keep := fixtureImage{Names: []string{"keep"}, Layers: [][]byte{layerTar(t, file("k", "k"))}}
	s.ok("load", "-i", writeFile(t, dockerArchive(t, keep)))

	rng := rand.New(rand.NewSource(1))
	var layers [][]byte
	for l := 0; l < 3; l++ {
		var files []tartest.Entry
		for i := 0; i < 1500; i++ {
			body := make([]byte, 8192)
			rng.Read(body)
			files = append(files, file(fmt.Sprintf("l%d/f%d", l, i), string(body)))
		}
		layers = append(layers, layerTar(t, files...))
	}
	big := writeFile(t, dockerArchive(t, fixtureImage{Names: []string{"big:1"}, Layers: layers}))

	// How long an uninterrupted load takes, to spread the kills over it.
	probe := newStore(t)
	start := time.Now()
	probe.ok("load", "-i", big)
	full := time.Since(start)
	t.Logf("an uninterrupted load takes %v", full)

	for i := 0; i < 12; i++ {
		delay := time.Duration(float64(full) * float64(i) / 10)
		cmd := exec.Command(cairnBin, "--root", s.root, "load", "-i", big)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		n := s.checkConsistent()
		names := s.ok("images", "--format", "{{.Repository}}")
		if !strings.Contains(names, "keep") {
			t.Fatalf("kill after %v: the other image is gone", delay)
		}
		if strings.Contains(names, "big") != (n == 2) {
			t.Fatalf("kill after %v: %d images but names %q", delay, n, names)
		}
		if strings.Contains(names, "big") {
			s.ok("rmi", "big:1")
		}
	}
	s.ok("load", "-i", big)
	if n := s.checkConsistent(); n != 2 {
		t.Fatalf("%d images after the final load, want 2", n)
	}
	// Prune sweeps what the killed loads left in tmp.
	s.ok("image", "prune", "-f")
	if left, _ := os.ReadDir(filepath.Join(s.root, "tmp")); len(left) != 0 {
		t.Fatalf("tmp holds %d leftovers after prune", len(left))
	}
	if n := len(s.snapshotIDs()); n != 4 {
		t.Fatalf("%d snapshots, want 4 (keep's and big's three)", n)
	}
}

// An rmi and a create of the same image at once: either the rmi is refused
// (the container uses the image) or the create finds no image; never both
// succeed, which would leave a container whose image is gone (its commit
// then fails). The delays spread the rmi over the create's lookup.
func TestRmiRacesCreate(t *testing.T) {
	s := newStore(t)
	s.busybox()
	base := strings.TrimSpace(s.ok("create", "--network", "none", "busybox", "true"))
	var refused, notFound int
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("race:%d", i)
		s.ok("commit", base, name)
		var create, rmi result
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			create = s.run(nil, "create", "--network", "none", "--pull", "never", name, "true")
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%20) * time.Millisecond)
			rmi = s.run(nil, "rmi", name)
		}()
		wg.Wait()
		switch {
		case create.Code == 0 && rmi.Code == 0:
			t.Fatalf("%s: both create and rmi succeeded: the container %s has no image\nrmi: %s", name, strings.TrimSpace(create.Stdout), rmi.Stdout)
		case create.Code == 0 && rmi.Code == 1 && strings.Contains(rmi.Stderr, "is using its referenced image"):
			refused++
			id := strings.TrimSpace(create.Stdout)
			s.ok("commit", id, name+"-again")
			s.ok("rm", id)
		case create.Code == 125 && strings.Contains(create.Stderr, "No such image: "+name) && rmi.Code == 0:
			notFound++
		default:
			t.Fatalf("%s: create: exit %d: %s\nrmi: exit %d: %s%s", name, create.Code, create.Stderr, rmi.Code, rmi.Stdout, rmi.Stderr)
		}
	}
	t.Logf("rmi refused %d times, create found no image %d times", refused, notFound)
	s.ok("rm", base)
	if out := s.ok("ps", "-a", "--no-trunc"); strings.Count(out, "\n") != 1 {
		t.Fatalf("a create that found no image left a container:\n%s", out)
	}
	s.checkConsistent()
}

// Containers removed while prunes sweep tmp/: each rm that says it removed
// its container did (a sweep that took the trash directory made for it
// once left the container in place, and rm exited 0).
func TestRmRacesPrune(t *testing.T) {
	s := newStore(t)
	s.busybox()
	stop := make(chan struct{})
	var prunes sync.WaitGroup
	for range 2 {
		prunes.Add(1)
		go func() {
			defer prunes.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r := s.run(nil, "image", "prune", "-f"); r.Code != 0 {
					t.Errorf("image prune -f: exit %d: %s", r.Code, r.Stderr)
					return
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				r := s.run(nil, "create", "--network", "none", "busybox", "true")
				id := strings.TrimSpace(r.Stdout)
				if r.Code != 0 {
					t.Errorf("create: exit %d: %s", r.Code, r.Stderr)
					return
				}
				if r := s.run(nil, "rm", id); r.Code != 0 {
					t.Errorf("rm %s: exit %d: %s", id, r.Code, r.Stderr)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	prunes.Wait()
	if out := s.ok("ps", "-aq"); out != "" {
		t.Fatalf("rm exited 0 but left containers:\n%s", out)
	}
}

// Listing the images while others are removed and pruned: a reader takes
// no lock, and the manifests of the index it read may be swept before it
// reads them; it reads the index again rather than fail.
func TestListRacesRmiPrune(t *testing.T) {
	s := newStore(t)
	s.busybox()
	base := strings.TrimSpace(s.ok("create", "--network", "none", "busybox", "true"))
	for i := range 30 {
		s.ok("commit", base, fmt.Sprintf("keep:%d", i))
	}
	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Add(1)
	go func() {
		defer churn.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("churn:%d", i)
			for _, args := range [][]string{{"commit", base, name}, {"rmi", name}} {
				if r := s.run(nil, args...); r.Code != 0 {
					t.Errorf("%s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 60 {
				if r := s.run(nil, "image", "inspect", "--format", "{{.Id}}", "keep:0"); r.Code != 0 {
					t.Errorf("image inspect keep:0 while others go: exit %d: %s", r.Code, r.Stderr)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	churn.Wait()
	s.ok("rm", base)
}
