package controlplane

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// TestHubAndTwoMembers exercises everything the framework promises on one
// hub + two members: real processes, fake-node rollouts, registration,
// restart with data kept, the black-hole proxy, and a clean teardown.
func TestHubAndTwoMembers(t *testing.T) {
	start := time.Now()
	env := StartForTest(t, Options{Members: []MemberOptions{
		{Name: "m1", Labels: map[string]string{"env": "prod"}, FakeNodes: true},
		{Name: "m2", Labels: map[string]string{"env": "staging"}, Proxy: true},
	}})
	t.Logf("hub + 2 members (one with fake nodes) ready in %s, RSS %d MiB over %d processes",
		time.Since(start).Round(100*time.Millisecond), rssBytes(env.Pids())>>20, len(env.Pids()))

	t.Run("real kube-apiserver and etcd processes serve every cluster", func(t *testing.T) {
		g := NewWithT(t)
		names := map[string]int{}
		for _, pid := range env.Pids() {
			exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
			g.Expect(err).NotTo(HaveOccurred())
			names[exe[strings.LastIndex(exe, "/")+1:]]++
		}
		g.Expect(names).To(HaveKeyWithValue("kube-apiserver", 3))
		g.Expect(names).To(HaveKeyWithValue("etcd", 3))
		g.Expect(names).To(HaveKeyWithValue("kwok", 1))
		for _, c := range []*Cluster{env.Hub, env.Member("m1"), env.Member("m2")} {
			v, err := kubernetes.NewForConfigOrDie(c.Config).Discovery().ServerVersion()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(v.GitVersion).To(HavePrefix("v1.37."), "binaries are stamped with their version")
		}
	})

	t.Run("a Deployment in a fake-node member becomes Available", func(t *testing.T) {
		g := NewWithT(t)
		m1 := env.Member("m1")
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](3),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
				},
			},
		}
		g.Expect(m1.Client.Create(t.Context(), dep)).To(Succeed())
		g.Eventually(func(g Gomega) {
			g.Expect(m1.Client.Get(t.Context(), client.ObjectKeyFromObject(dep), dep)).To(Succeed())
			g.Expect(dep.Status.AvailableReplicas).To(Equal(int32(3)))
			g.Expect(dep.Status.Conditions).To(ContainElement(And(
				HaveField("Type", appsv1.DeploymentAvailable), HaveField("Status", corev1.ConditionTrue))))
		}).WithTimeout(60 * time.Second).Should(Succeed())
	})

	t.Run("kwok renews a Lease for every fake Node, the heartbeat that keeps it Ready", func(t *testing.T) {
		// Without the Lease the only heartbeat is kwok's node status stage,
		// 600-1210 s apart: the Nodes went Unknown past the controller
		// manager's grace period and their Pods NotReady for good.
		g := NewWithT(t)
		m1 := env.Member("m1")
		first := map[string]time.Time{}
		g.Eventually(func(g Gomega) {
			var nodes corev1.NodeList
			g.Expect(m1.Client.List(t.Context(), &nodes)).To(Succeed())
			g.Expect(nodes.Items).To(HaveLen(FakeNodeCount))
			for _, n := range nodes.Items {
				var l coordinationv1.Lease
				g.Expect(m1.Client.Get(t.Context(), client.ObjectKey{Namespace: corev1.NamespaceNodeLease, Name: n.Name}, &l)).To(Succeed())
				g.Expect(l.Spec.RenewTime).NotTo(BeNil())
				renewed := l.Spec.RenewTime.Time
				if _, seen := first[n.Name]; !seen {
					first[n.Name] = renewed
				}
				g.Expect(renewed).To(BeTemporally(">", first[n.Name]), "Lease of Node %s renewed", n.Name)
			}
		}).WithTimeout(3 * nodeLeaseSeconds * time.Second).WithPolling(time.Second).Should(Succeed())
	})

	t.Run("a member is registered on the hub as the contract says", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(env.Register(t.Context(), env.Member("m1"), "hub-operator-system", nil)).To(Succeed())
		var s corev1.Secret
		g.Expect(env.Hub.Client.Get(t.Context(), client.ObjectKey{Namespace: "hub-operator-system", Name: "m1"}, &s)).To(Succeed())
		g.Expect(s.Labels).To(HaveKeyWithValue(hubv1.MemberClusterLabel, "true"))
		g.Expect(s.Labels).To(HaveKeyWithValue("env", "prod"))
		cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[hubv1.KubeconfigKey])
		g.Expect(err).NotTo(HaveOccurred())
		_, err = kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred(), "the registered kubeconfig reaches the member")
	})

	t.Run("stopping and restarting an API server keeps its data and address", func(t *testing.T) {
		g := NewWithT(t)
		m2 := env.Member("m2")
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survivor", Namespace: "default"}, Data: map[string]string{"k": "v"}}
		g.Expect(m2.Client.Create(t.Context(), cm)).To(Succeed())
		g.Expect(m2.StopAPIServer()).To(Succeed())
		err := m2.Client.Get(t.Context(), client.ObjectKeyFromObject(cm), cm)
		g.Expect(errors.Is(err, syscall.ECONNREFUSED)).To(BeTrue(), "stopped server refuses: %v", err)
		g.Expect(m2.StartAPIServer(t.Context())).To(Succeed())
		got := &corev1.ConfigMap{}
		g.Expect(m2.Client.Get(t.Context(), client.ObjectKeyFromObject(cm), got)).To(Succeed())
		g.Expect(got.Data).To(HaveKeyWithValue("k", "v"))
	})

	t.Run("a cut proxy makes requests hang until their timeout and restore heals", func(t *testing.T) {
		g := NewWithT(t)
		m2 := env.Member("m2")
		cfg, err := clientcmd.RESTConfigFromKubeConfig(m2.Kubeconfig)
		g.Expect(err).NotTo(HaveOccurred())
		cfg.Timeout = 2 * time.Second
		cs := kubernetes.NewForConfigOrDie(cfg)
		_, err = cs.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred(), "through the proxy before the cut")

		m2.Proxy.Cut()
		began := time.Now()
		_, err = cs.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{})
		g.Expect(err).To(HaveOccurred())
		g.Expect(time.Since(began)).To(BeNumerically(">=", 2*time.Second), "a black hole hangs, it does not refuse")
		var ne net.Error
		g.Expect(errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "deadline") || strings.Contains(err.Error(), "Timeout")).
			To(BeTrue(), "timed out: %v", err)

		m2.Proxy.Restore()
		g.Eventually(func() error {
			_, err := cs.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{})
			return err
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	t.Run("teardown leaves no process behind", func(t *testing.T) {
		g := NewWithT(t)
		pids := env.Pids()
		g.Expect(pids).To(HaveLen(9), "3 etcd, 3 kube-apiserver, kube-controller-manager, kube-scheduler, kwok")
		g.Expect(env.Stop()).To(Succeed())
		for _, pid := range pids {
			g.Expect(alive(pid)).To(BeFalse(), "pid %d still alive", pid)
		}
	})
}

// TestChildrenDieWithTheTestProcess runs a child test process that starts a
// hub and then panics; every control-plane process it started must die with
// it, since a failing test must not leave API servers behind.
func TestChildrenDieWithTheTestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: starts kube-apiserver and etcd (make test)")
	}
	if pidFile := os.Getenv("CONTROLPLANE_PANIC_PIDS"); pidFile != "" {
		env, err := Start(t.Context(), Options{Members: []MemberOptions{{Name: "m1"}}})
		if err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(pidFile, []byte(fmt.Sprint(env.Pids())), 0o600)
		panic("deliberate panic with control planes running")
	}
	g := NewWithT(t)
	pidFile := t.TempDir() + "/pids"
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildrenDieWithTheTestProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CONTROLPLANE_PANIC_PIDS="+pidFile)
	out, err := cmd.CombinedOutput()
	g.Expect(err).To(HaveOccurred(), "the child panics")
	g.Expect(string(out)).To(ContainSubstring("deliberate panic"))
	data, err := os.ReadFile(pidFile)
	g.Expect(err).NotTo(HaveOccurred(), "child output: %s", out)
	var pids []int
	for _, f := range strings.Fields(strings.Trim(string(data), "[]")) {
		pid, err := strconv.Atoi(f)
		g.Expect(err).NotTo(HaveOccurred())
		pids = append(pids, pid)
	}
	g.Expect(pids).To(HaveLen(4), "hub and member: etcd + kube-apiserver each")
	g.Eventually(func() []int {
		var living []int
		for _, pid := range pids {
			if alive(pid) {
				living = append(living, pid)
			}
		}
		return living
	}).WithTimeout(10 * time.Second).Should(BeEmpty())
}

func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// A zombie (state Z) has exited; it only waits to be reaped.
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

// rssBytes sums the resident memory of pids.
func rssBytes(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}
