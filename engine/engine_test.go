package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/image"
	"github.com/cairn-runtime/cairn/rootfs"
)

func TestParsePullPolicy(t *testing.T) {
	for in, want := range map[string]PullPolicy{"": PullMissing, "always": PullAlways, "missing": PullMissing, "never": PullNever} {
		if got, err := ParsePullPolicy(in); err != nil || got != want {
			t.Errorf("ParsePullPolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParsePullPolicy("sometimes"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a policy Docker does not have: %v", err)
	}
}

// The first line of a pull, as Docker prints it.
func TestPullTarget(t *testing.T) {
	for ref, want := range map[string][2]string{
		"busybox":                               {"latest", "library/busybox"},
		"busybox:1.36":                          {"1.36", "library/busybox"},
		"localhost:5000/team/app:2":             {"2", "team/app"},
		"app@sha256:" + strings.Repeat("a", 64): {"sha256:" + strings.Repeat("a", 64), "library/app"},
	} {
		what, path, err := PullTarget(ref)
		if err != nil || what != want[0] || path != want[1] {
			t.Errorf("PullTarget(%q) = %q, %q, %v; want %q, %q", ref, what, path, err, want[0], want[1])
		}
	}
	if _, _, err := PullTarget("Team/App"); !errors.Is(err, ErrInvalid) {
		t.Errorf("an invalid name: %v", err)
	}
}

func TestParseCompression(t *testing.T) {
	if c, err := ParseCompression("zstd"); err != nil || c != rootfs.Zstd {
		t.Errorf("zstd: %v %v", c, err)
	}
	if c, err := ParseCompression(""); err != nil || c != rootfs.Gzip {
		t.Errorf("the default is gzip: %v %v", c, err)
	}
	if _, err := ParseCompression("xz"); !errors.Is(err, ErrInvalid) {
		t.Errorf("xz: %v", err)
	}
}

// An engine on an empty root: the stores are made, nothing is listed, a
// missing image is image.ErrNotFound under every policy that does not pull,
// and a registry configuration that does not parse fails the registry's
// use only.
func TestEmptyRoot(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.json")
	writeFile(t, cfg, "{not json")
	e, err := Open(Options{Root: filepath.Join(dir, "root"), Run: filepath.Join(dir, "run"), NetworkRun: filepath.Join(dir, "network"), RegistryConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if list, err := e.ImageList(ImageListOptions{}); err != nil || len(list) != 0 {
		t.Fatalf("images of an empty store: %v %v", list, err)
	}
	if _, err := e.ImageList(ImageListOptions{Filters: Filters{"colour": {"red"}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a filter images do not have: %v", err)
	}
	if err := e.EnsureImage(ctx, "busybox", PullNever, PullOptions{}, nil); err != nil {
		t.Fatalf("never pulls, never fails: %v", err)
	}
	if _, err := e.InspectImage("busybox"); !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("inspect of a missing image: %v", err)
	}
	if _, err := e.Inspect(ctx, "nothing", ""); !errors.Is(err, ErrNoSuchObject) {
		t.Fatalf("inspect of nothing: %v", err)
	}
	if _, err := e.SaveItems([]string{"busybox"}); !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("save of a missing image: %v", err)
	}
	missing := ""
	err = e.EnsureImage(ctx, "busybox", PullMissing, PullOptions{}, func(ref string) { missing = ref })
	if !errors.Is(err, ErrConfig) || missing != "busybox" {
		t.Fatalf("a pull with a broken registry configuration: %v (told missing %q)", err, missing)
	}
	if err := e.Prune(ctx); err != nil {
		t.Fatalf("prune of an empty store: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
