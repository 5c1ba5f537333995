//go:build failpoints

package failpoint

import (
	"os"
	"strings"
	"syscall"
)

// Hit kills this process with SIGKILL if CAIRN_FAILPOINT (a
// comma-separated list) names name.
func Hit(name string) {
	for _, want := range strings.Split(os.Getenv("CAIRN_FAILPOINT"), ",") {
		if want == name {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}
