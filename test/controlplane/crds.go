package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// CRDDir is where `make manifests` writes the CRD, as a Helm template.
func CRDDir() string {
	return filepath.Join(ChartDir(), "templates", "crds")
}

// InstallCRDs installs the chart's CRDs on this cluster (the Helm template
// lines are dropped) and waits until they are Established.
func (c *Cluster) InstallCRDs(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(CRDDir(), "*.yaml"))
	if err != nil {
		return fmt.Errorf("listing CRDs in %s: %w", CRDDir(), err)
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRDs in %s: run `make manifests`", CRDDir())
	}
	for _, f := range files {
		crd, err := ReadCRD(f)
		if err != nil {
			return err
		}
		if err := c.Client.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating CRD %s: %w", crd.Name, err)
		}
		if err := c.waitEstablished(ctx, crd.Name); err != nil {
			return err
		}
	}
	return nil
}

// ReadCRD reads a CRD file written by `make manifests`, dropping Helm's
// template directives.
func ReadCRD(path string) (*apiextensionsv1.CustomResourceDefinition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kept [][]byte
	for _, line := range bytes.Split(data, []byte("\n")) {
		if !strings.HasPrefix(strings.TrimSpace(string(line)), "{{") {
			kept = append(kept, line)
		}
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(bytes.Join(kept, []byte("\n")), crd); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return crd, nil
}

func (c *Cluster) waitEstablished(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, &crd); err == nil {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not Established: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
