package controlplane

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ChartDir is the Helm chart's directory.
func ChartDir() string { return filepath.Join(RepoRoot(), "charts", "hub-operator") }

// HelmBinary is the pinned helm built by `make tools`. Without it (and
// outside CI, where it must be there) the test skips rather than fails.
func HelmBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(RepoRoot(), "bin", "helm")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s is missing: run `make tools` (or `make bin/.stamps/helm`) first", bin)
		}
		t.Fatalf("%s is missing in CI: %v", bin, err)
	}
	return bin
}

// Helm runs the pinned helm, against the hub of kubeconfig unless it is
// empty, and returns its standard output. Helm's own cache, config and data
// go to a temporary directory, so tests neither read nor write the user's
// helm setup.
func Helm(t testing.TB, kubeconfig string, args ...string) string {
	t.Helper()
	if kubeconfig != "" {
		args = append(args, "--kubeconfig", kubeconfig)
	}
	cmd := exec.CommandContext(t.Context(), HelmBinary(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// Manifest is one object of a rendered chart.
type Manifest struct {
	metav1.TypeMeta
	Name string
	// YAML is the object as helm template printed it.
	YAML []byte
}

// RenderChart runs `helm template RELEASE CHART -n NAMESPACE ARGS...` on the
// repository's chart and returns the objects it rendered, in order.
func RenderChart(t testing.TB, release, namespace string, args ...string) []Manifest {
	t.Helper()
	out := Helm(t, "", append([]string{"template", release, ChartDir(), "-n", namespace}, args...)...)
	var objs []Manifest
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatal(err)
		}
		if head.Kind != "" {
			objs = append(objs, Manifest{TypeMeta: head.TypeMeta, Name: head.Metadata.Name, YAML: doc})
		}
	}
}
