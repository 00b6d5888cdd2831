package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	. "github.com/onsi/gomega"

	"example.com/hub-operator/test/controlplane"
)

// imageConfig is the part of the OCI image config the test reads.
type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string   `json:"User"`
		Entrypoint []string `json:"Entrypoint"`
		Cmd        []string `json:"Cmd"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// readTar returns the regular files of a tar stream by name.
func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Name == "hub-operator" && h.Mode&0o111 == 0 {
			t.Errorf("/hub-operator is not executable: mode %o", h.Mode)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
}

// TestImageTarball builds the image the way users do (`make image`, no
// docker) and reads it back with nothing but the standard library: the
// config runs /hub-operator as a non-root user, and its single layer holds a
// static binary that is the operator.
func TestImageTarball(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: builds the operator image with make image (make test)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("make is not installed")
		}
		t.Fatal(err)
	}
	g := NewWithT(t)
	// A BIN of its own keeps the test from racing a developer's bin/.
	bin := t.TempDir()
	out := filepath.Join(bin, "hub-operator-image.tar")
	cmd := exec.CommandContext(t.Context(), "make", "-C", controlplane.RepoRoot(), "image", "BIN="+bin)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	g.Expect(err).NotTo(HaveOccurred(), "make image writes $(BIN)/hub-operator-image.tar")
	defer func() { _ = f.Close() }()
	files := readTar(t, f)

	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	g.Expect(json.Unmarshal(files["manifest.json"], &manifest)).To(Succeed())
	g.Expect(manifest).To(HaveLen(1))
	g.Expect(manifest[0].RepoTags).To(ConsistOf("hub-operator:0.1.0"), "tagged with the chart's appVersion")
	g.Expect(manifest[0].Layers).To(HaveLen(1), "one layer on an empty base")

	var cfg imageConfig
	g.Expect(json.Unmarshal(files[manifest[0].Config], &cfg)).To(Succeed())
	g.Expect(cfg.Config.User).To(Equal("65532:65532"), "non-root, numeric so runAsNonRoot can be checked")
	g.Expect(cfg.Config.Entrypoint).To(Equal([]string{"/hub-operator"}))
	g.Expect(cfg.Config.Cmd).To(BeEmpty())
	g.Expect(cfg.OS).To(Equal("linux"))
	g.Expect(cfg.Architecture).To(Equal(runtime.GOARCH))

	zr, err := gzip.NewReader(bytes.NewReader(files[manifest[0].Layers[0]]))
	g.Expect(err).NotTo(HaveOccurred())
	layer, err := io.ReadAll(zr)
	g.Expect(err).NotTo(HaveOccurred())
	sum := sha256.Sum256(layer)
	g.Expect(cfg.RootFS.DiffIDs).To(Equal([]string{"sha256:" + hex.EncodeToString(sum[:])}), "the config names this layer")
	rootfs := readTar(t, bytes.NewReader(layer))
	g.Expect(rootfs).To(HaveKey("hub-operator"))

	// Static: no dynamic loader, no shared libraries, so it runs on an
	// empty base.
	exe, err := elf.NewFile(bytes.NewReader(rootfs["hub-operator"]))
	g.Expect(err).NotTo(HaveOccurred(), "/hub-operator is an ELF binary")
	for _, p := range exe.Progs {
		g.Expect(p.Type).NotTo(Equal(elf.PT_INTERP), "/hub-operator asks for a dynamic loader")
	}
	libs, err := exe.ImportedLibraries()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(libs).To(BeEmpty())

	// And it is the operator: its flags are the contract's.
	path := filepath.Join(t.TempDir(), "hub-operator")
	g.Expect(os.WriteFile(path, rootfs["hub-operator"], 0o700)).To(Succeed())
	help, _ := exec.CommandContext(t.Context(), path, "--help").CombinedOutput()
	g.Expect(string(help)).To(ContainSubstring("-cluster-registry-namespace"))
}
