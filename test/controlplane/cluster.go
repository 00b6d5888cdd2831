package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// Cluster is one running control plane: the hub or a member.
type Cluster struct {
	// Name is the cluster's name; for a member it is also its registry Secret's name.
	Name string
	// Config is an admin (system:masters) REST config talking to the API
	// server directly, never through the proxy.
	Config *rest.Config
	// Client is an admin client over Config whose scheme knows client-go's
	// types, apiextensions and MyResource.
	Client client.Client
	// Kubeconfig is an admin kubeconfig with every credential embedded; it
	// points at the proxy when the member has one, so that what is handed to
	// the operator can be cut off.
	Kubeconfig []byte
	// KubeconfigPath is Kubeconfig written to a file, for kubectl and child processes.
	KubeconfigPath string
	// OperatorKubeconfig is a kubeconfig for the operator's own identity
	// (OperatorUser, in system:masters), whose requests are audited; through
	// the proxy when there is one. Env.Register hands it to the operator.
	OperatorKubeconfig []byte
	// OperatorKubeconfigPath is OperatorKubeconfig written to a file.
	OperatorKubeconfigPath string
	// Proxy sits between the operator and this member's API server when the
	// member was started with Proxy; nil otherwise.
	Proxy *Proxy
	// Dir holds this cluster's certificates, data and process logs.
	Dir string

	bins      string
	ca        *authority
	port      int
	etcd      *etcd
	prefix    string
	saKey     string
	saPub     string
	apiserver *process
	helpers   []*process // kube-controller-manager, kube-scheduler, kwok
	lean      bool
}

// Scheme is the scheme of every Cluster.Client.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	must(clientgoscheme.AddToScheme(s))
	must(apiextensionsv1.AddToScheme(s))
	must(hubv1.AddToScheme(s))
	return s
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// Host is the API server's URL, direct (not through the proxy).
func (c *Cluster) Host() string { return "https://127.0.0.1:" + strconv.Itoa(c.port) }

// start brings up the cluster's API server against its etcd.
func (c *Cluster) start(ctx context.Context) error {
	var err error
	if c.ca, err = newAuthority(c.Name); err != nil {
		return err
	}
	certPEM, keyPEM, err := c.ca.issue("kube-apiserver", nil, []string{"127.0.0.1", "localhost"})
	if err != nil {
		return err
	}
	files := map[string][]byte{"ca.crt": c.ca.pem, "apiserver.crt": certPEM, "apiserver.key": keyPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(c.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	if c.saKey, c.saPub, err = writeServiceAccountKey(c.Dir); err != nil {
		return err
	}
	if err := c.startOnFreePort(ctx); err != nil {
		return err
	}
	if c.Client, err = client.New(c.Config, client.Options{Scheme: Scheme()}); err != nil {
		return err
	}
	server := c.Host()
	if c.Proxy != nil {
		if err := c.Proxy.start("127.0.0.1:" + strconv.Itoa(c.port)); err != nil {
			return err
		}
		server = "https://" + c.Proxy.Addr()
	}
	if c.Kubeconfig, err = c.kubeconfig(server, c.Config); err != nil {
		return err
	}
	c.KubeconfigPath = filepath.Join(c.Dir, "kubeconfig")
	if err := os.WriteFile(c.KubeconfigPath, c.Kubeconfig, 0o600); err != nil {
		return err
	}
	if c.OperatorKubeconfig, err = c.UserKubeconfig(OperatorUser, "system:masters"); err != nil {
		return err
	}
	c.OperatorKubeconfigPath = filepath.Join(c.Dir, "operator.kubeconfig")
	return os.WriteFile(c.OperatorKubeconfigPath, c.OperatorKubeconfig, 0o600)
}

// startOnFreePort starts the API server, on a new port when another process
// bound the first one before it could.
func (c *Cluster) startOnFreePort(ctx context.Context) error {
	var err error
	for range 3 {
		if c.port, err = freePort(); err != nil {
			return err
		}
		if c.Config, err = c.UserConfig("admin", "system:masters"); err != nil {
			return err
		}
		c.Config.QPS, c.Config.Burst = 200, 400
		if err = c.StartAPIServer(ctx); err == nil || !lostPortRace(c.apiserver) {
			return err
		}
	}
	return err
}

// StartAPIServer starts (or restarts, after StopAPIServer) the API server on
// the same address with the same data, and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if c.apiserver != nil && !c.apiserver.exited() {
		return fmt.Errorf("cluster %s: API server is already running", c.Name)
	}
	bin, err := binary(c.bins, "kube-apiserver")
	if err != nil {
		return err
	}
	d := c.Dir
	policy, err := writeAuditPolicy(d)
	if err != nil {
		return err
	}
	args := []string{
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + filepath.Join(d, "audit.log"),
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--etcd-servers=" + c.etcd.url(),
		"--etcd-prefix=" + c.prefix,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.port),
		"--cert-dir=" + d,
		"--tls-cert-file=" + filepath.Join(d, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(d, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(d, "ca.crt"),
		"--service-account-issuer=https://" + c.Name + ".clusters.hub-operator.test",
		"--service-account-key-file=" + c.saPub,
		"--service-account-signing-key-file=" + c.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--profiling=false",
		"--endpoint-reconciler-type=none",
		logVerbosity,
	}
	var env []string
	if c.lean {
		args, env = append(args, leanArgs...), leanEnv
	}
	if c.apiserver, err = startProcessEnv(d, "kube-apiserver", bin, args, env); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	hc, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		return err
	}
	return c.apiserver.waitFor(ctx, "readyz", func(ctx context.Context) error {
		return getOK(ctx, hc, c.Host()+"/readyz")
	})
}

// StopAPIServer stops the API server, keeping etcd and its data.
func (c *Cluster) StopAPIServer() error {
	return c.apiserver.stop(15 * time.Second)
}

// UserConfig is a REST config for user in groups, authenticated by a client
// certificate of this cluster's CA, talking to the API server directly.
func (c *Cluster) UserConfig(user string, groups ...string) (*rest.Config, error) {
	certPEM, keyPEM, err := c.ca.issue(user, groups, nil)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host: c.Host(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData: c.ca.pem, CertData: certPEM, KeyData: keyPEM,
		},
	}, nil
}

// UserKubeconfig is a kubeconfig with embedded credentials for user in
// groups, pointing at the proxy when there is one.
func (c *Cluster) UserKubeconfig(user string, groups ...string) ([]byte, error) {
	cfg, err := c.UserConfig(user, groups...)
	if err != nil {
		return nil, err
	}
	server := c.Host()
	if c.Proxy != nil {
		server = "https://" + c.Proxy.Addr()
	}
	return c.kubeconfig(server, cfg)
}

// TokenKubeconfig is a kubeconfig with an embedded bearer token (for example
// from the TokenRequest API), pointing at the proxy when there is one.
func (c *Cluster) TokenKubeconfig(token string) ([]byte, error) {
	server := c.Host()
	if c.Proxy != nil {
		server = "https://" + c.Proxy.Addr()
	}
	return c.kubeconfig(server, &rest.Config{BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: c.ca.pem}})
}

func (c *Cluster) kubeconfig(server string, cfg *rest.Config) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[c.Name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.ca.pem}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
	}
	kc.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: "user"}
	kc.CurrentContext = c.Name
	return clientcmd.Write(*kc)
}

// Pids lists the process ids of every process this cluster runs (not a shared etcd).
func (c *Cluster) Pids() []int {
	var pids []int
	for _, p := range append([]*process{c.apiserver}, c.helpers...) {
		if p != nil && !p.exited() {
			pids = append(pids, p.Pid())
		}
	}
	if c.etcd != nil && c.etcd.owner == c && !c.etcd.proc.exited() {
		pids = append(pids, c.etcd.proc.Pid())
	}
	return pids
}

func (c *Cluster) stop() error {
	var errs []error
	for i := len(c.helpers) - 1; i >= 0; i-- {
		errs = append(errs, c.helpers[i].stop(5*time.Second))
	}
	errs = append(errs, c.apiserver.stop(15*time.Second))
	if c.Proxy != nil {
		c.Proxy.Close()
	}
	if c.etcd != nil && c.etcd.owner == c {
		errs = append(errs, c.etcd.proc.stop(10*time.Second))
	}
	return joinErrs(errs)
}

func getOK(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
