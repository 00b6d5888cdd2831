package e2e

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestKubectlHub runs the built kubectl-hub binary against the hub, as a
// user would, and compares its output with golden files.
func TestKubectlHub(t *testing.T) {
	g := NewWithT(t)
	bin := buildKubectlHub(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2")
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	t.Cleanup(func() { _ = env.Hub.Client.Delete(cleanupContext(t), mr) })
	eventuallyReady(t, mr)

	t.Run("status", func(t *testing.T) {
		// The Applied event is recorded asynchronously, possibly after Ready.
		NewWithT(t).Eventually(func() []string {
			var reasons []string
			for _, e := range hubEvents(t, ns, mr.Name) {
				reasons = append(reasons, e.Reason)
			}
			return reasons
		}).WithTimeout(30 * time.Second).Should(ContainElement(hubv1.ReasonApplied))
		out := kubectlHub(t, bin, "status", "-n", ns, mr.Name)
		compareGolden(t, "status.golden", normalise(out, ns))
	})

	t.Run("clusters", func(t *testing.T) {
		// Other tests register and remove bad-* clusters, and stop and
		// restart members; the three suite members are the stable subset.
		NewWithT(t).Eventually(func(g Gomega) {
			for _, name := range []string{"m1", "m2", "m3"} {
				var s corev1.Secret
				g.Expect(env.Hub.Client.Get(t.Context(), client.ObjectKey{Namespace: registryNS, Name: name}, &s)).To(Succeed())
				g.Expect(s.Annotations).To(HaveKeyWithValue(hubv1.ClusterStateAnnotation, "Ready"), name)
			}
		}).WithTimeout(60 * time.Second).Should(Succeed())
		out := kubectlHub(t, bin, "clusters", "--registry-namespace", registryNS, "m1", "m2", "m3")
		compareGolden(t, "clusters.golden", normalise(out, ns))
	})

	t.Run("clusters names what is not registered", func(t *testing.T) {
		g := NewWithT(t)
		cmd := exec.CommandContext(t.Context(), bin, "clusters", "--kubeconfig", env.Hub.KubeconfigPath,
			"--registry-namespace", registryNS, "m1", "nowhere")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		g.Expect(cmd.Run()).To(HaveOccurred())
		g.Expect(stdout.String()).To(ContainSubstring("m1"))
		g.Expect(stderr.String()).To(ContainSubstring("not registered in namespace " + registryNS + ": nowhere"))
	})
}

// buildKubectlHub builds the plugin from the repository, as go install would.
func buildKubectlHub(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubectl-hub")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/kubectl-hub")
	cmd.Dir = controlplane.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-hub: %v\n%s", err, out)
	}
	return bin
}

// kubectlHub runs the plugin against the hub and returns what it printed.
func kubectlHub(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, append(args, "--kubeconfig", env.Hub.KubeconfigPath)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl-hub %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

var (
	// cellSeparator separates table cells: tabwriter pads with at least 3 blanks.
	cellSeparator = regexp.MustCompile(` {3,}`)
	// age is a kubectl-style age, alone or with an event's repetitions.
	age = regexp.MustCompile(`^\d+[smhdy](\d+[smhd])?( \(x\d+( over \d+[smhdy](\d+[smhd])?)?\))?$`)
)

// normalise replaces what changes from run to run (ages, the test's
// namespace) and realigns the tables, whose widths depend on them.
func normalise(out, namespace string) string {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 6, 4, 3, ' ', 0)
	for line := range strings.Lines(out) {
		cells := cellSeparator.Split(strings.TrimRight(line, "\n"), -1)
		for i, c := range cells {
			c = strings.ReplaceAll(c, namespace, "NAMESPACE")
			if age.MatchString(c) {
				c = "AGE"
			}
			cells[i] = c
		}
		// A line without cells (blank, or a title) ends the table above.
		if len(cells) == 1 {
			_ = tw.Flush()
		}
		_, _ = tw.Write([]byte(strings.Join(cells, "\t") + "\n"))
	}
	_ = tw.Flush()
	return buf.String()
}

// compareGolden compares got with testdata/<test name>/name, or rewrites it
// with -update.
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", strings.Split(t.Name(), "/")[0], name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	NewWithT(t).Expect(got).To(Equal(string(want)), "golden file %s (run with -update to rewrite it)", path)
}
