package rootless

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/user"
)

func TestSubordinate(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(f, []byte("# ranges\nalice:100000:65536\nbob:165536:65536\n1003:231072:10\nalice:300000:5\n"), 0o644)
	for _, c := range []struct {
		name string
		id   int
		want []user.SubID
	}{
		{"alice", 1001, []user.SubID{{Name: "alice", SubID: 100000, Count: 65536}, {Name: "alice", SubID: 300000, Count: 5}}},
		{"carol", 1003, []user.SubID{{Name: "1003", SubID: 231072, Count: 10}}}, // by ID
		{"dave", 1004, nil},
	} {
		got, err := subordinate(f, c.name, c.id)
		if err != nil || len(got) != len(c.want) || len(got) > 0 && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	os.WriteFile(f, []byte("alice:100000\n"), 0o644)
	if _, err := subordinate(f, "alice", 1001); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("a bad line: %v", err)
	}
}

func TestMappings(t *testing.T) {
	got := mappings(1001, []user.SubID{{Name: "alice", SubID: 100000, Count: 65536}, {Name: "alice", SubID: 300000, Count: 5}})
	want := []Mapping{{0, 1001, 1}, {1, 100000, 65536}, {65537, 300000, 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}

func TestRunningPauseTrustsOnlyItsProcess(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) { os.WriteFile(filepath.Join(dir, "pause.pid"), []byte(s), 0o600) }
	if runningPause(dir) != 0 {
		t.Error("no pid file: a pause process")
	}
	self := os.Getpid()
	write(fmt.Sprintf("%d %s\n", self, startTime(self)))
	if runningPause(dir) != self {
		t.Error("the process that wrote it: not found")
	}
	write(fmt.Sprintf("%d 1\n", self)) // a pid reused since
	if runningPause(dir) != 0 {
		t.Error("another start time: taken for the pause process")
	}
	write("garbage")
	if runningPause(dir) != 0 {
		t.Error("garbage: taken for a pid")
	}
}

func TestRunDirWithoutXDG(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("TMPDIR", t.TempDir())
	dir, err := RunDir()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 || filepath.Dir(dir) != os.TempDir() {
		t.Errorf("%s: %v %v", dir, fi.Mode(), err)
	}
	os.Chmod(dir, 0o755) // someone opened it up
	if _, err := RunDir(); err == nil || !strings.Contains(err.Error(), "not a private directory") {
		t.Errorf("an open directory: %v", err)
	}
}

func TestRunDirOfAnotherUser(t *testing.T) {
	// As su leaves it: the first user's runtime directory, not this one's.
	other := "/" // root's, for a user
	if os.Getuid() == 0 {
		other = t.TempDir()
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XDG_RUNTIME_DIR", other)
	t.Setenv("TMPDIR", t.TempDir())
	dir, err := RunDir()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != os.TempDir() {
		t.Errorf("another user's XDG_RUNTIME_DIR %s: used %s", other, dir)
	}
}

func TestDataDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/x/data")
	if d, _ := DataDir(); d != "/x/data/cairn" {
		t.Errorf("XDG_DATA_HOME: %s", d)
	}
	t.Setenv("XDG_DATA_HOME", "relative") // not absolute: ignored, as the spec says
	t.Setenv("HOME", "/home/u")
	if d, _ := DataDir(); d != "/home/u/.local/share/cairn" {
		t.Errorf("HOME: %s", d)
	}
}
