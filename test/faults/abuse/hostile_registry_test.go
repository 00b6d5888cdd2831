package abuse

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/suite"
)

// hostileToken is a recognisable credential planted in hostile kubeconfigs.
const hostileToken = "h0stile-t0ken-0123456789abcdefghij"

// traps are files a hostile kubeconfig points at. Each is a FIFO: opening it
// for reading blocks until a writer comes, so a reader is caught by the
// watcher's non-blocking open for writing, which succeeds only while someone
// holds the FIFO open for reading.
type traps struct {
	dir    string
	marker string // the exec and auth-provider commands would create it
	paths  map[string]string
}

func newTraps(t *testing.T) *traps {
	t.Helper()
	dir := t.TempDir()
	tr := &traps{dir: dir, marker: filepath.Join(dir, "pwned"), paths: map[string]string{}}
	for _, name := range []string{"token", "client.crt", "client.key", "ca.crt"} {
		p := filepath.Join(dir, name)
		NewWithT(t).Expect(syscall.Mkfifo(p, 0o666)).To(Succeed())
		tr.paths[name] = p
	}
	return tr
}

// watch polls the FIFOs until stop is closed and returns the ones some
// process opened for reading.
func (tr *traps) watch(stop <-chan struct{}) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		read := map[string]bool{}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for name, p := range tr.paths {
				f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0)
				if err == nil {
					read[name] = true
					_ = f.Close() // lets the reader go on (it reads EOF)
				}
			}
			select {
			case <-stop:
				var names []string
				for n := range read {
					names = append(names, n)
				}
				out <- names
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// kubeconfig builds a kubeconfig around an inline token and CA, then lets
// mutate break it.
func kubeconfig(server string, ca []byte, mutate func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)) []byte {
	kc := clientcmdapi.NewConfig()
	c := &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	u := &clientcmdapi.AuthInfo{Token: hostileToken}
	mutate(c, u)
	kc.Clusters["c"], kc.AuthInfos["u"] = c, u
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		panic(err)
	}
	return data
}

// hostileSecrets are registry Secrets the contract refuses, by name: each
// one's data (nil data: the Secret has no kubeconfig key at all).
func hostileSecrets(t *testing.T, tr *traps) map[string]map[string][]byte {
	t.Helper()
	m1 := env.Member("m1")
	m1Server := m1.Config.Host
	ca := m1.Config.CAData
	kc := func(mutate func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)) map[string][]byte {
		return map[string][]byte{hubv1.KubeconfigKey: kubeconfig(m1Server, ca, mutate)}
	}
	hubKubeconfig := func(server string) []byte {
		cfg, err := clientcmd.Load(env.Hub.OperatorKubeconfig)
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		for _, c := range cfg.Clusters {
			c.Server = server
		}
		data, err := clientcmd.Write(*cfg)
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		return data
	}
	// Just under the API server's 1 MiB Secret limit: the operator parses it
	// (the validator's limit is 1 MiB too) and must still refuse the plugin.
	padded := kubeconfig(m1Server, ca, func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
		u.Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: "/bin/sh", Args: []string{"-c", "touch " + tr.marker}}
	})
	padded = append(padded, []byte("\n# "+strings.Repeat("A", 1<<20-len(padded)-4096)+"\n")...)
	return map[string]map[string][]byte{
		"bad-garbage":     {hubv1.KubeconfigKey: []byte("\x00\x01\x02\xff not a kubeconfig: [" + hostileToken)},
		"bad-empty":       {hubv1.KubeconfigKey: {}},
		"bad-missing-key": {"config": kubeconfig(m1Server, ca, func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo) {})},
		"bad-exec": kc(func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: "/bin/sh", Args: []string{"-c", "touch " + tr.marker}}
		}),
		"bad-auth-provider": kc(func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Token = ""
			u.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "gcp", Config: map[string]string{
				"cmd-path": "/bin/touch", "cmd-args": tr.marker, "access-token": hostileToken,
			}}
		}),
		"bad-token-file": kc(func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Token, u.TokenFile = "", tr.paths["token"]
		}),
		"bad-cert-files": kc(func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Token, u.ClientCertificate, u.ClientKey = "", tr.paths["client.crt"], tr.paths["client.key"]
		}),
		"bad-ca-file": kc(func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.CertificateAuthority = nil, tr.paths["ca.crt"]
		}),
		// The hub's own API server with the operator's real hub credentials,
		// spelled as the operator knows it and as an alias of the same host.
		"bad-hub":           {hubv1.KubeconfigKey: hubKubeconfig(env.Hub.Host())},
		"bad-hub-localhost": {hubv1.KubeconfigKey: hubKubeconfig(strings.Replace(env.Hub.Host(), "127.0.0.1", "localhost", 1))},
		"bad-near-limit":    {hubv1.KubeconfigKey: padded},
	}
}

func registrySecret(name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: registryNS, Name: name, Labels: map[string]string{hubv1.MemberClusterLabel: "true"}},
		Data:       data,
	}
}

func TestHostileRegistrySecretsAreInvalidNeverExecutedNorReadAndNeverLeak(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := t.Context()
	tr := newTraps(t)
	stop := make(chan struct{})
	stopOnce := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(stopOnce)
	readers := tr.watch(stop)
	began := time.Now()

	hostile := hostileSecrets(t, tr)
	var names []string
	for name, data := range hostile {
		g.Expect(env.Hub.Client.Create(ctx, registrySecret(name, data))).To(Succeed(), name)
		names = append(names, name)
		t.Cleanup(func() {
			_ = env.Hub.Client.Delete(cleanupContext(t), registrySecret(name, nil))
		})
	}

	// 5 MiB cannot even be stored: the API server refuses it, so the user
	// learns at once and the operator never sees it.
	huge := registrySecret("bad-5mib", map[string][]byte{hubv1.KubeconfigKey: make([]byte, 5<<20)})
	err := env.Hub.Client.Create(ctx, huge)
	g.Expect(err).To(HaveOccurred())
	t.Logf("5 MiB registry Secret refused by the API server: %s", apiReason(err))
	g.Expect(apierrors.IsNotFound(env.Hub.Client.Get(ctx, client.ObjectKeyFromObject(huge), &corev1.Secret{}))).To(BeTrue())

	ns := newNamespace(t, "hostile")
	selecting := newMyResource(ns, "selects-hostile", append([]string{"m1"}, names...)...)
	g.Expect(env.Hub.Client.Create(ctx, selecting)).To(Succeed())
	served := newMyResource(ns, "served", "m1")
	g.Expect(env.Hub.Client.Create(ctx, served)).To(Succeed())
	eventuallyReady(t, served, 120*time.Second)
	t.Logf("a MyResource on m1 became Ready %s after the hostile Secrets were registered", time.Since(began).Round(100*time.Millisecond))

	// What a user reads: every hostile cluster InvalidKubeconfig, in the
	// MyResource's per-cluster status and on its registry Secret.
	g.Eventually(func(g Gomega) {
		got := get(ctx, g, selecting)
		for _, name := range names {
			c := suite.ClusterCondition(got, name, hubv1.ClusterConditionApplied)
			g.Expect(c).NotTo(BeNil(), name)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse), name)
			g.Expect(c.Reason).To(Equal(hubv1.ReasonInvalidKubeconfig), "%s: %s", name, c.Message)
		}
		a := suite.ClusterCondition(got, "m1", hubv1.ClusterConditionAvailable)
		g.Expect(a).NotTo(BeNil())
		g.Expect(a.Status).To(Equal(metav1.ConditionTrue), "m1 keeps being served")
		for _, name := range names {
			var s corev1.Secret
			g.Expect(env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: registryNS, Name: name}, &s)).To(Succeed())
			g.Expect(s.Annotations).To(HaveKeyWithValue(hubv1.ClusterStateAnnotation, "Invalid"), name)
			g.Expect(s.Annotations).To(HaveKeyWithValue(hubv1.ClusterReasonAnnotation, hubv1.ReasonInvalidKubeconfig), name)
			g.Expect(s.Annotations[hubv1.ClusterMessageAnnotation]).NotTo(BeEmpty(), name)
		}
	}).WithTimeout(90 * time.Second).WithPolling(time.Second).Should(Succeed())
	got := get(ctx, g, selecting)
	for _, name := range names {
		t.Logf("%-18s -> %s: %s", name, hubv1.ReasonInvalidKubeconfig, suite.ClusterCondition(got, name, hubv1.ClusterConditionApplied).Message)
	}
	for _, name := range []string{"bad-hub", "bad-hub-localhost"} {
		g.Expect(suite.ClusterCondition(got, name, hubv1.ClusterConditionApplied).Message).To(ContainSubstring("hub"),
			"%s: the reason says the hub cannot be its own member", name)
	}
	g.Eventually(func(g Gomega) {
		var events corev1.EventList
		g.Expect(env.Hub.Client.List(ctx, &events, client.InNamespace(registryNS))).To(Succeed())
		warned := map[string]bool{}
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Kind == "Secret" && e.Reason == hubv1.ReasonInvalidKubeconfig {
				warned[e.InvolvedObject.Name] = true
			}
		}
		for _, name := range names {
			g.Expect(warned).To(HaveKey(name), "a Warning event on registry Secret %s", name)
		}
	}).WithTimeout(30 * time.Second).Should(Succeed())

	stopOnce()
	g.Expect(<-readers).To(BeEmpty(), "files a hostile kubeconfig points at were opened")
	_, err = os.Stat(tr.marker)
	g.Expect(errors.Is(err, os.ErrNotExist)).To(BeTrue(), "a command from a kubeconfig ran")

	assertNoSecretMaterial(t, hostile)
}

func apiReason(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		return fmt.Sprintf("%d %s", s.Status().Code, s.Status().Reason)
	}
	return err.Error()
}

// assertNoSecretMaterial looks for every credential byte of every registry
// Secret (the members' real ones and the hostile ones) in everything a
// person or a log pipeline can read: the operator's log, every hub event,
// every MyResource and every registry Secret's annotations.
func assertNoSecretMaterial(t *testing.T, hostile map[string]map[string][]byte) {
	t.Helper()
	g := NewWithT(t)
	ctx := t.Context()
	logs := logSince(t, 0)
	var events corev1.EventList
	g.Expect(env.Hub.Client.List(ctx, &events)).To(Succeed())
	var mrs hubv1.MyResourceList
	g.Expect(env.Hub.Client.List(ctx, &mrs)).To(Succeed())
	var secrets corev1.SecretList
	g.Expect(env.Hub.Client.List(ctx, &secrets, client.InNamespace(registryNS))).To(Succeed())
	annotations := map[string]map[string]string{}
	for _, s := range secrets.Items {
		annotations[s.Name] = s.Annotations
	}
	places := map[string]string{
		"operator log":                logs,
		"hub events":                  mustJSON(events.Items),
		"MyResources":                 mustJSON(mrs.Items),
		"registry Secret annotations": mustJSON(annotations),
	}
	kubeconfigs := [][]byte{env.Hub.OperatorKubeconfig}
	for _, m := range env.Members {
		kubeconfigs = append(kubeconfigs, m.OperatorKubeconfig)
	}
	for _, data := range hostile {
		for _, v := range data {
			kubeconfigs = append(kubeconfigs, v)
		}
	}
	needles := secretNeedles(kubeconfigs)
	g.Expect(len(needles)).To(BeNumerically(">", 100), "the credentials were collected")
	t.Logf("looked for %d credential fragments in %d bytes of operator log, %d hub events, %d MyResources, %d registry Secrets",
		len(needles), len(logs), len(events.Items), len(mrs.Items), len(secrets.Items))
	for where, text := range places {
		for _, n := range needles {
			if strings.Contains(text, n) {
				t.Errorf("credential material leaked into the %s: %.20q...", where, n)
			}
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// secretNeedles are fragments of every token, certificate and key of the
// kubeconfigs, in every form they could be printed in: as written in the
// kubeconfig (base64 of the PEM), the PEM's base64 body lines, and the
// decoded DER bytes (raw and hex). Fragments are 24 characters taken every
// 24, so any leak of 48 consecutive characters or more contains one.
func secretNeedles(kubeconfigs [][]byte) []string {
	var out []string
	add := func(s string) {
		const n = 24
		for i := 0; i+n <= len(s); i += n {
			out = append(out, s[i:i+n])
		}
	}
	addPEM := func(pemBytes []byte) {
		add(base64.StdEncoding.EncodeToString(pemBytes))
		var body strings.Builder
		for _, l := range strings.Split(string(pemBytes), "\n") {
			if !strings.HasPrefix(l, "-----") {
				body.WriteString(l)
			}
		}
		add(body.String())
		der, err := base64.StdEncoding.DecodeString(body.String())
		if err == nil {
			add(string(der))
			add(fmt.Sprintf("%x", der))
		}
	}
	for _, data := range kubeconfigs {
		cfg, err := clientcmd.Load(data)
		if err != nil {
			continue
		}
		for _, u := range cfg.AuthInfos {
			for _, b := range [][]byte{u.ClientCertificateData, u.ClientKeyData} {
				addPEM(b)
			}
			add(u.Token)
		}
		for _, c := range cfg.Clusters {
			addPEM(c.CertificateAuthorityData)
		}
	}
	add(hostileToken)
	return out
}
