package clusterregistry

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const testServer = "https://member.example.com:6443"

func TestValidateKubeconfig(t *testing.T) {
	pki := newTestPKI(t)
	withUser := func(u *clientcmdapi.AuthInfo) func(*clientcmdapi.Config) {
		return func(c *clientcmdapi.Config) { c.AuthInfos["admin"] = u }
	}
	valid := kubeconfig(t, testServer, pki.caPEM, nil)
	huge := append(bytes.Clone(valid), []byte("\n#"+strings.Repeat("x", 5<<20))...)

	tests := []struct {
		name      string
		data      []byte
		opts      ValidationOptions
		want      Problem // empty: valid
		checkHost string
	}{
		{
			name:      "inline token and CA data is valid",
			data:      valid,
			checkHost: testServer,
		},
		{
			name: "inline client certificate and key is valid",
			data: kubeconfig(t, testServer, pki.caPEM, withUser(&clientcmdapi.AuthInfo{
				ClientCertificateData: pki.certPEM, ClientKeyData: pki.keyPEM,
			})),
			checkHost: testServer,
		},
		{
			name:      "no CA data falls back to the system roots and is valid",
			data:      kubeconfig(t, testServer, nil, nil),
			checkHost: testServer,
		},
		{
			name: "exec and file references in users other than the current one are still rejected",
			data: kubeconfig(t, testServer, pki.caPEM, func(c *clientcmdapi.Config) {
				c.AuthInfos["other"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "/bin/sh"}}
			}),
			want: ProblemExecPlugin,
		},
		{name: "empty input is rejected", data: nil, want: ProblemEmpty},
		{name: "whitespace is rejected", data: []byte("  \n"), want: ProblemNoCurrentContext},
		{name: "garbage bytes are rejected", data: []byte("\x00\xff{{" + testToken + ": [unclosed"), want: ProblemMalformed},
		{name: "a YAML list is rejected", data: []byte("- " + testToken + "\n- b\n"), want: ProblemMalformed},
		{name: "a 5 MiB kubeconfig is rejected before parsing", data: huge, want: ProblemTooLarge},
		{
			name: "a kubeconfig above a custom limit is rejected",
			data: valid, opts: ValidationOptions{MaxBytes: len(valid) - 1}, want: ProblemTooLarge,
		},
		{
			name: "exec credential plugin is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, withUser(&clientcmdapi.AuthInfo{
				Exec: &clientcmdapi.ExecConfig{Command: "aws", Args: []string{"eks", "get-token", testToken}, APIVersion: "client.authentication.k8s.io/v1"},
			})),
			want: ProblemExecPlugin,
		},
		{
			name: "auth-provider plugin is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, withUser(&clientcmdapi.AuthInfo{
				AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "oidc", Config: map[string]string{"id-token": testToken}},
			})),
			want: ProblemAuthProvider,
		},
		{
			name: "tokenFile is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, withUser(&clientcmdapi.AuthInfo{TokenFile: "/var/run/secrets/token"})),
			want: ProblemFileReference,
		},
		{
			name: "client-certificate file is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, withUser(&clientcmdapi.AuthInfo{
				ClientCertificate: "/etc/client.crt", ClientKeyData: pki.keyPEM,
			})),
			want: ProblemFileReference,
		},
		{
			name: "client-key file is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, withUser(&clientcmdapi.AuthInfo{
				ClientCertificateData: pki.certPEM, ClientKey: "/etc/client.key",
			})),
			want: ProblemFileReference,
		},
		{
			name: "certificate-authority file is rejected",
			data: kubeconfig(t, testServer, nil, func(c *clientcmdapi.Config) {
				c.Clusters["member"].CertificateAuthority = "/etc/ca.crt"
			}),
			want: ProblemFileReference,
		},
		{
			name: "insecure-skip-tls-verify is rejected",
			data: kubeconfig(t, testServer, nil, func(c *clientcmdapi.Config) {
				c.Clusters["member"].InsecureSkipTLSVerify = true
			}),
			want: ProblemInsecure,
		},
		{name: "plain http server is rejected", data: kubeconfig(t, "http://member.example.com:8080", nil, nil), want: ProblemServerURL},
		{name: "server without scheme is rejected", data: kubeconfig(t, "member.example.com:6443", nil, nil), want: ProblemServerURL},
		{name: "server with user info is rejected", data: kubeconfig(t, "https://admin:"+testToken+"@member.example.com", nil, nil), want: ProblemServerURL},
		{name: "empty server is rejected", data: kubeconfig(t, "", nil, nil), want: ProblemServerURL},
		{
			name: "missing current-context is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, func(c *clientcmdapi.Config) { c.CurrentContext = "" }),
			want: ProblemNoCurrentContext,
		},
		{
			name: "current-context naming an undefined context is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, func(c *clientcmdapi.Config) { c.CurrentContext = testToken }),
			want: ProblemNoCurrentContext,
		},
		{
			name: "context naming an undefined cluster is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, func(c *clientcmdapi.Config) { c.Contexts["member"].Cluster = "nope" }),
			want: ProblemNoCurrentContext,
		},
		{
			name: "context naming an undefined user is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, func(c *clientcmdapi.Config) { c.Contexts["member"].AuthInfo = "nope" }),
			want: ProblemNoCurrentContext,
		},
		{
			name: "CA data that is not PEM is rejected",
			data: kubeconfig(t, testServer, []byte(testToken), nil),
			want: ProblemTLSData,
		},
		{
			name: "client certificate without its key is rejected",
			data: kubeconfig(t, testServer, pki.caPEM, withUser(&clientcmdapi.AuthInfo{ClientCertificateData: pki.certPEM})),
			want: ProblemIncomplete,
		},
		{
			name: "mismatched client certificate and key are rejected",
			data: kubeconfig(t, testServer, pki.caPEM, withUser(&clientcmdapi.AuthInfo{
				ClientCertificateData: pki.certPEM, ClientKeyData: newTestPKI(t).keyPEM,
			})),
			want: ProblemTLSData,
		},
		{
			name: "server equal to a forbidden URL is rejected",
			data: valid, opts: ValidationOptions{ForbiddenHosts: []string{"https://MEMBER.example.com:6443"}},
			want: ProblemForbiddenHost,
		},
		{
			name: "server equal to a forbidden host:port is rejected",
			data: valid, opts: ValidationOptions{ForbiddenHosts: []string{"10.0.0.1:443", "member.example.com.:6443"}},
			want: ProblemForbiddenHost,
		},
		{
			name: "a forbidden bare host matches any port",
			data: valid, opts: ValidationOptions{ForbiddenHosts: []string{"member.example.com"}},
			want: ProblemForbiddenHost,
		},
		{
			name: "a forbidden URL without port matches the https default port",
			data: kubeconfig(t, "https://hub.example.com", nil, nil), opts: ValidationOptions{ForbiddenHosts: []string{"hub.example.com:443"}},
			want: ProblemForbiddenHost,
		},
		{
			name: "localhost is the same host as a forbidden loopback address",
			data: kubeconfig(t, "https://localhost:6443", nil, nil), opts: ValidationOptions{ForbiddenHosts: []string{"https://127.0.0.1:6443"}},
			want: ProblemForbiddenHost,
		},
		{
			name: "any loopback or unspecified address is the same host as a forbidden localhost",
			data: kubeconfig(t, "https://[::ffff:127.0.0.2]:6443", nil, nil), opts: ValidationOptions{ForbiddenHosts: []string{"localhost:6443"}},
			want: ProblemForbiddenHost,
		},
		{
			name: "the unspecified address reaches a forbidden loopback server",
			data: kubeconfig(t, "https://0.0.0.0:6443", nil, nil), opts: ValidationOptions{ForbiddenHosts: []string{"127.0.0.1"}},
			want: ProblemForbiddenHost,
		},
		{
			name: "an IPv4-mapped IPv6 server is its IPv4 address",
			data: kubeconfig(t, "https://[::ffff:10.0.0.1]:443", nil, nil), opts: ValidationOptions{ForbiddenHosts: []string{"https://10.0.0.1"}},
			want: ProblemForbiddenHost,
		},
		{name: "a shortened IPv4 address is rejected", data: kubeconfig(t, "https://127.1:6443", nil, nil), want: ProblemServerURL},
		{name: "a decimal IPv4 address is rejected", data: kubeconfig(t, "https://2130706433:6443", nil, nil), want: ProblemServerURL},
		{name: "a hexadecimal IPv4 address is rejected", data: kubeconfig(t, "https://0x7f.0.0.1:6443", nil, nil), want: ProblemServerURL},
		{
			name: "a loopback server is allowed when the forbidden host is remote",
			data: kubeconfig(t, "https://127.0.0.1:6443", nil, nil), opts: ValidationOptions{ForbiddenHosts: []string{"10.0.0.1"}},
			checkHost: "https://127.0.0.1:6443",
		},
		{
			name: "the same host on another port is not forbidden",
			data: valid, opts: ValidationOptions{ForbiddenHosts: []string{"https://member.example.com:443", "member.example.com:7443"}},
			checkHost: testServer,
		},
	}
	secrets := []string{
		testToken,
		"BEGIN",
		string(pki.keyPEM[30:60]),
		base64.StdEncoding.EncodeToString(pki.caPEM)[:24],
		base64.StdEncoding.EncodeToString(pki.keyPEM)[:24],
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cfg, err := ValidateKubeconfig(tt.data, tt.opts)
			if tt.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(cfg.Host).To(Equal(tt.checkHost))
				g.Expect(cfg.Insecure).To(BeFalse())
				return
			}
			g.Expect(cfg).To(BeNil())
			ike, ok := errors.AsType[*InvalidKubeconfigError](err)
			g.Expect(ok).To(BeTrue(), "error %v is not an *InvalidKubeconfigError", err)
			g.Expect(ike.Problem).To(Equal(tt.want))
			g.Expect(err.Error()).To(Equal(problemMessages[tt.want]))
			for _, s := range secrets {
				g.Expect(err.Error()).NotTo(ContainSubstring(s))
			}
		})
	}
}

func TestValidateKubeconfigReturnsUsableCredentials(t *testing.T) {
	g := NewWithT(t)
	pki := newTestPKI(t)

	cfg, err := ValidateKubeconfig(kubeconfig(t, testServer, pki.caPEM, nil), ValidationOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.BearerToken).To(Equal(testToken))
	g.Expect(cfg.CAData).To(Equal(pki.caPEM))

	cfg, err = ValidateKubeconfig(kubeconfig(t, testServer, pki.caPEM, func(c *clientcmdapi.Config) {
		c.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: pki.certPEM, ClientKeyData: pki.keyPEM}
	}), ValidationOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.CertData).To(Equal(pki.certPEM))
	g.Expect(cfg.KeyData).To(Equal(pki.keyPEM))
}

// TestConnectBackoff: the delay between connect attempts starts at the base,
// doubles with each failure, is capped, and is jittered by at most 10% so
// that members lost together are not retried in lockstep.
func TestConnectBackoff(t *testing.T) {
	g := NewWithT(t)
	p := New(Options{})
	b := p.connectBackoff()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		d := b.Step()
		g.Expect(d).To(BeNumerically(">=", w), "attempt %d", i)
		g.Expect(d).To(BeNumerically("<=", w+w/10), "attempt %d", i)
	}
	for range 1 << 10 { // a member down for days
		b.Step()
	}
	g.Expect(b.Step()).To(BeNumerically("<=", time.Minute+6*time.Second), "stays capped")
	g.Expect(p.connectBackoff().Step()).To(BeNumerically("<", 2*time.Second), "a fresh backoff starts over")
}

// FuzzValidateKubeconfig checks that no input makes ValidateKubeconfig panic,
// that every error is an *InvalidKubeconfigError carrying one of the fixed
// messages (so it cannot echo input), and that whatever it accepts carries no
// plugin, file reference or disabled TLS verification.
func FuzzValidateKubeconfig(f *testing.F) {
	pki := newTestPKI(f)
	f.Add(kubeconfig(f, testServer, pki.caPEM, nil))
	f.Add(kubeconfig(f, testServer, pki.caPEM, func(c *clientcmdapi.Config) {
		c.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: pki.certPEM, ClientKeyData: pki.keyPEM}
	}))
	allowed := make([]string, 0, len(problemMessages))
	for _, msg := range problemMessages {
		allowed = append(allowed, msg)
	}
	opts := ValidationOptions{MaxBytes: 64 << 10, ForbiddenHosts: []string{"hub.example.com", "https://10.0.0.1:6443"}}

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ValidateKubeconfig(data, opts)
		if err != nil {
			if cfg != nil {
				t.Fatalf("got a config and an error")
			}
			ike, ok := errors.AsType[*InvalidKubeconfigError](err)
			if !ok {
				t.Fatalf("error of type %T is not an *InvalidKubeconfigError", err)
			}
			if !slices.Contains(allowed, ike.Error()) {
				t.Fatalf("error message %q is not one of the fixed messages", ike.Error())
			}
			return
		}
		switch {
		case cfg.ExecProvider != nil, cfg.AuthProvider != nil:
			t.Fatalf("accepted a credential plugin")
		case cfg.BearerTokenFile != "", cfg.CertFile != "", cfg.KeyFile != "", cfg.CAFile != "":
			t.Fatalf("accepted a file reference")
		case cfg.Insecure:
			t.Fatalf("accepted insecure-skip-tls-verify")
		case !strings.HasPrefix(cfg.Host, "https://"):
			t.Fatalf("accepted a non-https server")
		}
		hp, ok := parseServer(cfg.Host)
		if !ok || ipv4Alias(hp.host) {
			t.Fatalf("accepted a server that is not an https URL with a name or a canonical IP address")
		}
		if isForbidden(hp, opts.ForbiddenHosts) {
			t.Fatalf("accepted a forbidden host")
		}
	})
}

// ipv4Alias is the fuzz oracle for hosts a resolver may read as an IPv4
// address without it being written as one: a top label of digits only, or
// in hex. Real names never end that way.
func ipv4Alias(host string) bool {
	if net.ParseIP(host) != nil {
		return false
	}
	top := host[strings.LastIndex(host, ".")+1:]
	_, decimal := strconv.ParseUint(top, 10, 64)
	return decimal == nil || strings.HasPrefix(top, "0x")
}
