package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The log rotates as Docker's json-file does: the file that reached
// max-size becomes .1, .1 becomes .2, and so on up to max-file files; every
// entry is whole in one file.
func TestLogRotation(t *testing.T) {
	dir := t.TempDir()
	s := &Store{dir: dir}
	c := &Container{ID: "c1", Host: HostConfig{LogConfig: LogConfig{Type: LogJSONFile, Config: map[string]string{"max-size": "1k", "max-file": "3"}}}}
	os.MkdirAll(filepath.Join(dir, "c1"), 0o755)
	l, err := s.openLog(c)
	if err != nil {
		t.Fatal(err)
	}
	w := l.stream("stdout")
	for i := range 100 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	l.close()
	path := s.LogPath("c1")
	var lines []string
	for _, p := range []string{path + ".2", path + ".1", path} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if p != path && (len(b) < 1000 || len(b) > 1100) {
			t.Errorf("%s: %d bytes, want about max-size", filepath.Base(p), len(b))
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("max-file 3 keeps 3 files: %v", err)
	}
	if !strings.Contains(lines[len(lines)-1], `"line 99\n"`) || strings.Contains(lines[0], `"line 0\n"`) {
		t.Errorf("first %s, last %s", lines[0], lines[len(lines)-1])
	}
	// One file: emptied when full.
	c.Host.LogConfig.Config = map[string]string{"max-size": "1k", "max-file": "1"}
	os.Remove(path)
	l, _ = s.openLog(c)
	w = l.stream("stdout")
	for i := range 100 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	l.close()
	if st, _ := os.Stat(path); st.Size() > 1100 {
		t.Errorf("max-file 1: %d bytes", st.Size())
	}
	// none keeps nothing.
	c.Host.LogConfig = LogConfig{Type: LogNone}
	if l, err := s.openLog(c); l != nil || err != nil {
		t.Errorf("none: %v %v", l, err)
	}
}

func TestLogConfig(t *testing.T) {
	lc := LogConfig{}
	if err := checkLogConfig(&lc); err != nil || lc.Type != LogJSONFile || lc.Config == nil {
		t.Fatalf("%+v %v", lc, err)
	}
	if o := logOptionsOf(LogConfig{Type: LogLocal}); o.maxSize != 20e6 || o.maxFiles != 5 {
		t.Fatalf("local: %+v", o)
	}
	for _, ok := range []LogConfig{
		{Type: LogJSONFile, Config: map[string]string{"max-size": "10m", "max-file": "3"}},
		{Type: LogLocal, Config: map[string]string{"max-file": "2", "compress": "false"}},
		{Type: LogNone},
	} {
		if err := checkLogConfig(&ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []LogConfig{
		{Type: "syslog"}, {Type: "journald"},
		{Type: LogJSONFile, Config: map[string]string{"max-size": "0"}},
		{Type: LogJSONFile, Config: map[string]string{"max-size": "1m", "max-file": "0"}},
		{Type: LogJSONFile, Config: map[string]string{"max-file": "2"}},
		{Type: LogJSONFile, Config: map[string]string{"compress": "true", "max-size": "1m"}},
		{Type: LogJSONFile, Config: map[string]string{"labels": "a"}},
		{Type: LogJSONFile, Config: map[string]string{"bogus": "a"}},
		{Type: LogNone, Config: map[string]string{"max-size": "1m"}},
	} {
		if err := checkLogConfig(&bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
