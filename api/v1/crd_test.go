package v1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"

	"example.com/hub-operator/test/controlplane"
)

// TestCRDIsUpToDate regenerates the chart's CRD template from the Go types
// and fails when the checked-in one differs, so a marker change cannot ship
// without its CRD.
func TestCRDIsUpToDate(t *testing.T) {
	g := NewWithT(t)
	root := controlplane.RepoRoot()
	gen := filepath.Join(root, "bin", "controller-gen")
	if _, err := os.Stat(gen); err != nil {
		// A developer without the tool built still gets a useful test run;
		// CI must never pass without this check.
		if os.Getenv("CI") == "" {
			t.Skipf("%s not built (`make manifests` builds it); set CI=1 to make this a failure", gen)
		}
		t.Fatalf("%s not built in CI: %v", gen, err)
	}

	want := filepath.Join(controlplane.CRDDir(), "myresources.example.com.yaml")
	got := filepath.Join(t.TempDir(), "myresources.example.com.yaml")
	cmd := exec.CommandContext(t.Context(), filepath.Join(root, "test", "tools", "gen-crd.sh"), gen, got)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "gen-crd.sh failed:\n%s", out)

	wantData, err := os.ReadFile(want)
	g.Expect(err).NotTo(HaveOccurred(), "no checked-in CRD: run `make manifests`")
	gotData, err := os.ReadFile(got)
	g.Expect(err).NotTo(HaveOccurred())
	if diff := cmp.Diff(lines(wantData), lines(gotData)); diff != "" {
		const limit = 4000
		if len(diff) > limit {
			diff = diff[:limit] + "\n... (diff truncated)"
		}
		t.Fatalf("%s is stale: run `make manifests` and commit it (-checked-in +generated):\n%s", want, diff)
	}
}

func lines(b []byte) []string {
	return strings.Split(string(b), "\n")
}
