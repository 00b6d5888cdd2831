package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// TestKstatusPhases: what Flux, Helm 4 and kpt compute (kstatus, cli-utils)
// and what Argo CD's health check (docs/integrations/argocd) says about the
// MyResource the real operator writes on a real hub, phase by phase:
// created (Progressing); converged (Current, Healthy; kubectl wait returns);
// suspended (Suspended); a foreign Deployment holding its name in a member
// (Failed at once, Degraded, naming the cluster: no pipeline waits out its
// timeout); the member cleared (Current, Healthy).
func TestKstatusPhases(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2")
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	eventuallyArgoHealth(t, mr, "Progressing", "", 0) // as created, before the operator wrote a status
	kubectlWaitReady(t, mr)
	eventuallyKstatus(t, mr, kstatus.CurrentStatus, "", 10*time.Second)
	eventuallyArgoHealth(t, mr, "Healthy", "all 2 selected clusters", 10*time.Second)

	suspended := get(t, mr).DeepCopy()
	suspended.Spec.Suspend = true
	g.Expect(env.Hub.Client.Update(t.Context(), suspended)).To(Succeed())
	eventuallyArgoHealth(t, mr, "Suspended", "suspended", 30*time.Second)
	resumed := get(t, mr).DeepCopy()
	resumed.Spec.Suspend = false // a suspended MyResource's deletion touches no member: resume before cleanup
	g.Expect(env.Hub.Client.Update(t.Context(), resumed)).To(Succeed())
	eventuallyArgoHealth(t, mr, "Healthy", "", 30*time.Second)

	theirs := suite.ForeignDeployment(ns, "api")
	g.Expect(env.Member("m2").Client.Create(t.Context(), theirs, client.FieldOwner("payments-deployer"))).To(Succeed())
	blocked := newMyResource(ns, "api", "m1", "m2")
	g.Expect(env.Hub.Client.Create(t.Context(), blocked)).To(Succeed())
	eventuallyKstatus(t, blocked, kstatus.FailedStatus, "m2: Deployment "+ns+"/api exists", 60*time.Second)
	eventuallyArgoHealth(t, blocked, "Degraded", "m2: Deployment "+ns+"/api exists", 10*time.Second)

	g.Expect(env.Member("m2").Client.Delete(t.Context(), theirs)).To(Succeed())
	// A foreign object's deletion is seen at the conflict recheck (30 s).
	eventuallyKstatus(t, blocked, kstatus.CurrentStatus, "", 120*time.Second)
	eventuallyArgoHealth(t, blocked, "Healthy", "", 10*time.Second)
}

// eventuallyArgoHealth waits until Argo CD's health check, run on the
// MyResource read from the hub, says want; timeout 0 checks once.
func eventuallyArgoHealth(t *testing.T, mr *hubv1.MyResource, want, message string, timeout time.Duration) {
	t.Helper()
	check := func(g Gomega) {
		u := hubObject(t, g, mr)
		if timeout == 0 {
			unstructured.RemoveNestedField(u.Object, "status") // the phase before any status
		}
		status, msg := argoHealth(g, u.Object)
		g.Expect(status).To(Equal(want), msg)
		g.Expect(msg).To(ContainSubstring(message))
	}
	if timeout == 0 {
		check(NewWithT(t))
		return
	}
	NewWithT(t).Eventually(check).WithTimeout(timeout).WithPolling(250 * time.Millisecond).Should(Succeed())
}

// kubectlWaitReady runs the real kubectl's `kubectl wait
// --for=condition=Ready myr/NAME`, as a pipeline step would.
func kubectlWaitReady(t *testing.T, mr *hubv1.MyResource) {
	t.Helper()
	dir, err := controlplane.BinDir()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	began := time.Now()
	out, err := exec.CommandContext(t.Context(), filepath.Join(dir, "kubectl"), "--kubeconfig", env.Hub.KubeconfigPath,
		"wait", "--for=condition=Ready", "-n", mr.Namespace, "myr/"+mr.Name, "--timeout=90s").CombinedOutput()
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), string(out))
	NewWithT(t).Expect(string(out)).To(ContainSubstring("condition met"))
	t.Logf("kubectl wait --for=condition=Ready returned after %s: %s", time.Since(began).Round(100*time.Millisecond), out)
}

func eventuallyKstatus(t *testing.T, mr *hubv1.MyResource, want kstatus.Status, message string, timeout time.Duration) {
	t.Helper()
	began := time.Now()
	NewWithT(t).Eventually(func(g Gomega) {
		got, err := kstatus.Compute(hubObject(t, g, mr))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Status).To(Equal(want), got.Message)
		g.Expect(got.Message).To(ContainSubstring(message))
	}).WithTimeout(timeout).WithPolling(250 * time.Millisecond).Should(Succeed())
	t.Logf("kstatus %s after %s", want, time.Since(began).Round(100*time.Millisecond))
}

// hubObject reads the MyResource from the hub as the tools see it: unstructured.
func hubObject(t *testing.T, g Gomega, mr *hubv1.MyResource) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(hubv1.GroupVersion.WithKind("MyResource"))
	g.Expect(env.Hub.Client.Get(t.Context(), client.ObjectKeyFromObject(mr), u)).To(Succeed())
	return u
}
