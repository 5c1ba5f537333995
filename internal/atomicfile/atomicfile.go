package atomicfile

import (
	"os"
	"path/filepath"

	"github.com/cairn-runtime/cairn/internal/failpoint"
)

// WriteFile replaces path with data atomically and durably.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// Replace replaces path with data atomically but not durably: a reader sees the
// old content or the new, but after a crash of the machine the file may hold
// either, or be empty. For state that does not outlive a reboot anyway.
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this fails harmlessly
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	failpoint.Hit("atomicfile-written")
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		failpoint.Hit("atomicfile-synced")
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	failpoint.Hit("atomicfile-renamed")
	if !durable {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir makes the entries of dir (a rename into it, say) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
