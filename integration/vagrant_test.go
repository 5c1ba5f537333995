package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/cairn-runtime/cairn/internal/testutil"
)

// The Vagrantfile, for users on macOS or Windows, is one vagrant accepts.
// (No provider runs here: a VM of its own is more than a test can ask.)
func TestVagrantfileValidates(t *testing.T) {
	testutil.RequiresTool(t, "vagrant")
	cmd := exec.Command("vagrant", "validate", "--ignore-provider")
	cmd.Dir = testutil.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "validated successfully") {
		t.Fatalf("vagrant validate: %v\n%s", err, out)
	}
}
