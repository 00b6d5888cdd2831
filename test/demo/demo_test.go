package main

import (
	"os/exec"
	"strings"
	"testing"

	"example.com/hub-operator/test/controlplane"
)

// TestMakeDemoOnce runs `make demo DEMO_ONCE=1` as a user would, so the demo
// never rots: it must bring up the clusters, converge the sample and exit 0.
func TestMakeDemoOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three control planes")
	}
	cmd := exec.CommandContext(t.Context(), "make", "--no-print-directory", "demo", "DEMO_ONCE=1")
	cmd.Dir = controlplane.RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make demo DEMO_ONCE=1: %v\n%s", err, out)
	}
	for _, want := range []string{"prod-eu", "staging-us", "READY 2/2", "Ready "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
