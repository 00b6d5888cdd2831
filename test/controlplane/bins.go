package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// BinDir finds the control-plane binaries: KUBEBUILDER_ASSETS when it holds a
// kube-apiserver (setup-envtest users), else the repository's bin/.
func BinDir() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "kube-apiserver")); err == nil {
			return d, nil
		}
	}
	d := filepath.Join(RepoRoot(), "bin")
	if _, err := os.Stat(filepath.Join(d, "kube-apiserver")); err != nil {
		return "", fmt.Errorf("no kube-apiserver in KUBEBUILDER_ASSETS or %s: run `make control-plane`", d)
	}
	return d, nil
}

// RepoRoot is the repository's top directory, found from this source file so
// that tests in any package and the demo agree on it.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// binary resolves one binary, preferring KUBEBUILDER_ASSETS, then bin/.
func binary(dir, name string) (string, error) {
	for _, d := range []string{os.Getenv("KUBEBUILDER_ASSETS"), dir, filepath.Join(RepoRoot(), "bin")} {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("binary %s not found: run `make control-plane`", name)
}
