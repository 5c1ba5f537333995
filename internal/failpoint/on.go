//go:build failpoints

package failpoint

import (
	"os"
	"strings"
	"syscall"
)

// Hit kills this process with SIGKILL if CAIRN_FAILPOINT (a
// comma-separated list) names name. With CAIRN_FAILPOINT_TRACE set to a
// file, it first appends name to that file, one line per hit, so that a
// test learns which failpoints a command passes.
func Hit(name string) {
	if trace := os.Getenv("CAIRN_FAILPOINT_TRACE"); trace != "" {
		if f, err := os.OpenFile(trace, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			f.WriteString(name + "\n")
			f.Close()
		}
	}
	for _, want := range strings.Split(os.Getenv("CAIRN_FAILPOINT"), ",") {
		if want == name {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}
