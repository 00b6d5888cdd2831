// Command image writes hub-operator's container image as a tarball without
// docker and without a registry: one layer holding the static binary at
// /hub-operator on an empty base, the non-root user 65532:65532 and the
// entrypoint set, OCI media types. The tarball is what `docker save` writes
// (manifest.json plus blobs), so `docker load`, `podman load`, `crane push`
// and kind/k3d image import take it.
//
//	go run . --binary BIN --out bin/hub-operator-image.tar --tag hub-operator:0.1.0 --arch amd64
//
// The output is reproducible: every timestamp is the Unix epoch, so the same
// binary gives the same image digest.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is the image's user: numeric, so that runAsNonRoot can be verified
// by the kubelet without an /etc/passwd in the image; the chart runs as the
// same ids.
const User = "65532:65532"

func main() {
	binary := flag.String("binary", "", "the static hub-operator binary (CGO_ENABLED=0)")
	out := flag.String("out", "", "where to write the image tarball")
	tag := flag.String("tag", "hub-operator:latest", "the image reference recorded in the tarball")
	arch := flag.String("arch", runtime.GOARCH, "the binary's GOARCH")
	flag.Parse()
	if *binary == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*binary, *out, *tag, *arch); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(binary, out, tag, arch string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	layerTar, err := rootfs(bin)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.User = User
	cf.Config.Entrypoint = []string{"/hub-operator"}
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "hub-operator",
		"org.opencontainers.image.description": "Run one workload in many Kubernetes clusters from a single MyResource on a hub cluster.",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, img)
}

// rootfs is the layer: /hub-operator (root-owned, not writable by the user
// it runs as) and an empty /tmp for the metrics server's self-signed
// certificate when no volume is mounted there.
func rootfs(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "hub-operator", Mode: 0o755, Size: int64(len(bin)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
