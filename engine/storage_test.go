package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

func TestStorageError(t *testing.T) {
	root := t.TempDir()
	other := errors.New("something else")
	if got := StorageError(root, other); got != other {
		t.Fatalf("another error changed: %v", got)
	}
	if StorageError(root, nil) != nil {
		t.Fatal("nil changed")
	}
	cases := []struct {
		err   error
		errno syscall.Errno
		want  []string
	}{
		{fmt.Errorf("load x: %w", &fs.PathError{Op: "write", Path: root + "/tmp/blob-1", Err: syscall.ENOSPC}), syscall.ENOSPC,
			[]string{"load x: write " + root + "/tmp/blob-1: no space left on device: the store's root " + root + " is on ", ": free space there", "or use another --root"}},
		{fmt.Errorf("layer entry %q: write: %w", "big", syscall.EDQUOT), syscall.EDQUOT,
			[]string{"the store's root " + root + " is on ", "or use another --root"}},
		{fmt.Errorf("save: %w", &fs.PathError{Op: "write", Path: "/elsewhere/out.tar", Err: syscall.ENOSPC}), syscall.ENOSPC,
			[]string{"/elsewhere/out.tar is on ", ": free space there"}},
		{&fs.PathError{Op: "open", Path: root + "/locks/gc.lock", Err: syscall.EROFS}, syscall.EROFS,
			[]string{"the store's root " + root + " is on a read-only filesystem (", "remount it read-write or use another --root; commands that only read"}},
	}
	for _, c := range cases {
		got := StorageError(root, c.err)
		if !errors.Is(got, c.errno) {
			t.Errorf("%v: no longer %v", got, c.errno)
		}
		for _, w := range c.want {
			if !strings.Contains(got.Error(), w) {
				t.Errorf("%v: lacks %q", got, w)
			}
		}
		if strings.Contains(c.err.Error(), "elsewhere") && strings.Contains(got.Error(), "--root") {
			t.Errorf("%v: a file outside the store is no matter of --root", got)
		}
	}
}
