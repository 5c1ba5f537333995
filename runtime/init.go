package runtime

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// containerInitPath is where --init's binary is bound in the container, and
// what runs as its PID 1 (`/sbin/docker-init -- COMMAND`), as in Docker.
// Like Docker's, the mount point is made in the container's layer when the
// image lacks it: `diff` shows it.
const containerInitPath = "/sbin/docker-init"

// initCandidates are where the init binary is looked for: Debian's static
// tini (package tini), then docker-init on PATH (docker.io links it to
// tini-static). It must be static: it runs in images without a libc.
var initCandidates = []string{"/usr/bin/tini-static", "tini-static", "docker-init"}

// ErrNoInit is returned for --init when this host has no static init
// binary to run.
var ErrNoInit = errors.New("no init binary for --init")

// initBinary is the host path of the static init --init binds into a
// container (symlinks resolved), or ErrNoInit.
func initBinary() (string, error) {
	var tried []string
	for _, name := range initCandidates {
		p := name
		if !filepath.IsAbs(p) {
			lp, err := exec.LookPath(name)
			if err != nil {
				tried = append(tried, name+" (not on PATH)")
				continue
			}
			p = lp
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			tried = append(tried, p+" (missing)")
			continue
		}
		if st, err := os.Stat(real); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			tried = append(tried, p+" (not an executable file)")
			continue
		}
		if dynamic(real) {
			tried = append(tried, p+" (dynamically linked: it would not run in an image without its libraries)")
			continue
		}
		return real, nil
	}
	return "", fmt.Errorf("%w: install Debian's tini, which has the static /usr/bin/tini-static (tried %v)", ErrNoInit, tried)
}

// dynamic reports whether the ELF file at path asks for a program
// interpreter (the dynamic loader).
func dynamic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return true // not an ELF file this host runs
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}
