package controlplane

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestLeanMember: a lean member serves what the operator does on a member,
// to an identity authorized by RBAC (not system:masters), and holds less
// memory than a member with default flags on the same etcd.
func TestLeanMember(t *testing.T) {
	env := StartForTest(t, Options{SharedEtcd: true, Members: []MemberOptions{{Name: "lean", Lean: true}, {Name: "full"}}})
	lean, full := env.Member("lean"), env.Member("full")
	ctx := t.Context()
	g := NewWithT(t)

	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "create"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "patch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch", "create", "patch", "delete"}},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: []string{"list", "watch"}},
	}
	g.Expect(lean.Grant(ctx, "", "operator", "operator", rules)).To(Succeed())
	cfg, err := lean.UserConfig("operator")
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})).To(Succeed())
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}
	g.Expect(c.Create(ctx, dep)).To(Succeed())
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	g.Expect(c.Create(ctx, svc)).To(Succeed())
	g.Expect(svc.Spec.ClusterIP).NotTo(BeEmpty(), "the service IP allocator runs")
	for _, list := range []client.ObjectList{&appsv1.ReplicaSetList{}, &corev1.PodList{}, &corev1.EventList{}, &appsv1.DeploymentList{}} {
		g.Expect(c.List(ctx, list, client.InNamespace("team-a"))).To(Succeed())
	}
	g.Expect(c.Delete(ctx, dep)).To(Succeed())

	// Memory after both have idled a moment: a lean member holds less.
	var leanRSS, fullRSS int64
	g.Eventually(func() bool {
		leanRSS, fullRSS = rssBytes([]int{lean.apiserver.Pid()}), rssBytes([]int{full.apiserver.Pid()})
		return leanRSS < fullRSS
	}).WithTimeout(30 * time.Second).Should(BeTrue())
	t.Logf("API server RSS: lean %d MiB, default flags %d MiB", leanRSS>>20, fullRSS>>20)
}
