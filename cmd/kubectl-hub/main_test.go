package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// parsed is what a test compares of options: ConfigFlags holds pointers.
type parsed struct {
	command, kubeconfig, context, namespace, registryNamespace string
	subcommand                                                 string
	args                                                       []string
	rollout                                                    rolloutOptions
}

func summary(o *options) parsed {
	ro := o.rollout
	ro.pollPeriod = 0
	return parsed{command: o.command, subcommand: o.subcommand, args: o.args, registryNamespace: o.registryNamespace, rollout: ro,
		kubeconfig: *o.kube.KubeConfig, context: *o.kube.Context, namespace: *o.kube.Namespace}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    parsed
		wantErr bool
	}{
		{"status with flags after the name", []string{"status", "web", "-n", "shop", "--kubeconfig", "/k"},
			parsed{command: "status", args: []string{"web"}, namespace: "shop", kubeconfig: "/k"}, false},
		{"status with flags before the name", []string{"status", "--namespace=shop", "--context", "hub", "web"},
			parsed{command: "status", args: []string{"web"}, namespace: "shop", context: "hub"}, false},
		{"clusters defaults to the operator's namespace", []string{"clusters"},
			parsed{command: "clusters", registryNamespace: "hub-operator-system"}, false},
		{"clusters by name", []string{"clusters", "m1", "--registry-namespace", "reg", "m2"},
			parsed{command: "clusters", args: []string{"m1", "m2"}, registryNamespace: "reg"}, false},
		{"rollout status with --watch and --timeout", []string{"rollout", "status", "web", "-n", "shop", "-w", "--timeout", "5m"},
			parsed{command: "rollout", subcommand: "status", args: []string{"web"}, namespace: "shop",
				registryNamespace: "hub-operator-system", rollout: rolloutOptions{watch: true, timeout: 5 * time.Minute}}, false},
		{"rollout history of one revision", []string{"rollout", "history", "--revision", "3", "web"},
			parsed{command: "rollout", subcommand: "history", args: []string{"web"}, rollout: rolloutOptions{revision: 3}}, false},
		{"rollout approve a stage", []string{"rollout", "approve", "web", "--stage", "prod"},
			parsed{command: "rollout", subcommand: "approve", args: []string{"web"}, rollout: rolloutOptions{stage: "prod"}}, false},
		{"rollout undo to a revision", []string{"rollout", "undo", "web", "--to-revision=2"},
			parsed{command: "rollout", subcommand: "undo", args: []string{"web"}, rollout: rolloutOptions{revision: 2}}, false},
		{"rollout pause", []string{"rollout", "pause", "web"},
			parsed{command: "rollout", subcommand: "pause", args: []string{"web"}}, false},
		{"rollout needs a subcommand", []string{"rollout"}, parsed{}, true},
		{"rollout with an unknown subcommand", []string{"rollout", "restart", "web"}, parsed{}, true},
		{"rollout needs a name", []string{"rollout", "resume"}, parsed{}, true},
		{"pause takes no --watch", []string{"rollout", "pause", "web", "--watch"}, parsed{}, true},
		{"undo to a negative revision", []string{"rollout", "undo", "web", "--to-revision", "-1"}, parsed{}, true},
		{"status needs a name", []string{"status", "-n", "shop"}, parsed{}, true},
		{"status takes one name", []string{"status", "a", "b"}, parsed{}, true},
		{"clusters refuses -n, which would list the wrong registry", []string{"clusters", "-n", "x"}, parsed{}, true},
		{"an unknown flag is an error", []string{"status", "web", "--nope"}, parsed{}, true},
		{"unknown command", []string{"get"}, parsed{}, true},
		{"no command", nil, parsed{}, true},
		{"help", []string{"--help"}, parsed{}, true},
		{"help of a command", []string{"status", "-h"}, parsed{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var stderr bytes.Buffer
			got, err := parseArgs(tt.args, &stderr)
			if tt.wantErr {
				g.Expect(err).To(MatchError(errUsage))
				g.Expect(stderr.String()).To(ContainSubstring("Usage:"))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(summary(got)).To(Equal(tt.want))
		})
	}
}

// TestKubectlFlags checks that every command takes kubectl's standard
// connection flags, and lists them in its help.
func TestKubectlFlags(t *testing.T) {
	flags := []string{"--kubeconfig", "--context", "--cluster", "--user", "-n, --namespace", "--as", "--as-group",
		"--as-uid", "--request-timeout", "--server", "--token", "--certificate-authority", "--insecure-skip-tls-verify"}
	commands := [][]string{{cmdStatus}, {cmdClusters}}
	for _, sub := range rolloutSubcommands {
		commands = append(commands, []string{cmdRollout, sub})
	}
	for _, cmdline := range commands {
		command := strings.Join(cmdline, " ")
		t.Run(command, func(t *testing.T) {
			g := NewWithT(t)
			var stderr bytes.Buffer
			_, err := parseArgs(append(cmdline, "--help"), &stderr)
			g.Expect(err).To(MatchError(errUsage))
			for _, f := range flags {
				g.Expect(stderr.String()).To(ContainSubstring(f), "flag %s in the help of %s", f, command)
			}
		})
	}
}

// hubKubeconfig has two contexts on two servers, each with its own
// namespace; "east" is the current one.
const hubKubeconfig = `apiVersion: v1
kind: Config
current-context: east
clusters:
- name: east
  cluster: {server: "https://east.example:6443"}
- name: west
  cluster: {server: "https://west.example:6443"}
users:
- name: admin
  user: {token: not-a-secret}
contexts:
- name: east
  context: {cluster: east, user: admin, namespace: shop-east}
- name: west
  context: {cluster: west, user: admin, namespace: shop-west}
`

func TestHubConfigHonoursTheFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(hubKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		args          []string
		wantHost      string
		wantNamespace string
		wantTimeout   time.Duration
		wantUser      string
		wantGroups    []string
	}{
		{name: "the current context and its namespace by default", args: []string{"status", "web"},
			wantHost: "https://east.example:6443", wantNamespace: "shop-east", wantTimeout: 30 * time.Second},
		{name: "--context picks the server and the namespace", args: []string{"status", "web", "--context", "west"},
			wantHost: "https://west.example:6443", wantNamespace: "shop-west", wantTimeout: 30 * time.Second},
		{name: "-n wins over the context's namespace", args: []string{"status", "--context=west", "-n", "other", "web"},
			wantHost: "https://west.example:6443", wantNamespace: "other", wantTimeout: 30 * time.Second},
		{name: "impersonation and the request timeout", args: []string{"clusters", "--as", "alice", "--as-group", "a",
			"--as-group", "b", "--request-timeout", "5s"},
			wantHost: "https://east.example:6443", wantNamespace: "shop-east", wantTimeout: 5 * time.Second,
			wantUser: "alice", wantGroups: []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var stderr bytes.Buffer
			o, err := parseArgs(append(tt.args, "--kubeconfig", path), &stderr)
			g.Expect(err).NotTo(HaveOccurred(), stderr.String())
			config, namespace, err := hubConfig(o)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(config.Host).To(Equal(tt.wantHost))
			g.Expect(namespace).To(Equal(tt.wantNamespace))
			g.Expect(config.Timeout).To(Equal(tt.wantTimeout))
			g.Expect(config.Impersonate.UserName).To(Equal(tt.wantUser))
			g.Expect(config.Impersonate.Groups).To(Equal(tt.wantGroups))
		})
	}
}

// TestLinksNoMulticlusterRuntime keeps the plugin a small client of the
// hub: linking the operator's runtime (through clusterregistry, hub or
// member) would make every kubectl user build and carry it. depguard in
// .golangci.yml catches direct imports; this catches transitive ones.
func TestLinksNoMulticlusterRuntime(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to list the plugin's dependencies")
	}
	out, err := exec.CommandContext(t.Context(), goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "sigs.k8s.io/multicluster-runtime") {
			t.Errorf("kubectl-hub links %s", pkg)
		}
	}
}
