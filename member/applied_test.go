package member

import (
	"encoding/json"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	hubv1 "example.com/hub-operator/api/v1"
)

// memberVersion is the Deployment and Service as a member holds them after
// our apply: what was sent, plus what the member adds of its own.
func memberVersion(g Gomega, d *Desired) (*appsv1.Deployment, *corev1.Service) {
	dep, svc := typed(g, d)
	dep.UID, dep.Generation, dep.ResourceVersion = "dep-uid", 1, "100"
	svc.UID, svc.ResourceVersion = "svc-uid", "101"
	return dep, svc
}

// TestFingerprint pins which member changes make an apply of the same intent
// go out again: every change to what we applied, and nothing that only the
// member's own controllers or other writers do beside it.
func TestFingerprint(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*appsv1.Deployment, *corev1.Service)
		changed bool
	}{
		{name: "the same version", edit: func(*appsv1.Deployment, *corev1.Service) {}},
		{
			name: "Deployment status writes of a rollout, its revision annotation and a Service status write are not changes",
			edit: func(d *appsv1.Deployment, _ *corev1.Service) {
				d.ResourceVersion = "200"
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, ReadyReplicas: 1}
				d.Annotations["deployment.kubernetes.io/revision"] = "1"
			},
		},
		{
			name: "labels and annotations others add are not changes",
			edit: func(d *appsv1.Deployment, _ *corev1.Service) {
				d.Labels["injected-by"] = "webhook"
				d.Annotations["note"] = "kept"
			},
		},
		{
			name:    "a spec or annotation write through the main resource bumps the generation",
			edit:    func(d *appsv1.Deployment, _ *corev1.Service) { d.Generation = 2 },
			changed: true,
		},
		{
			name:    "an owner label removed is a change",
			edit:    func(d *appsv1.Deployment, _ *corev1.Service) { delete(d.Labels, hubv1.OwnerNameLabel) },
			changed: true,
		},
		{
			name:    "an owner label emptied is a change",
			edit:    func(d *appsv1.Deployment, _ *corev1.Service) { d.Labels[hubv1.OwnerNameLabel] = "" },
			changed: true,
		},
		{
			name:    "our annotation changed is a change, even written through status",
			edit:    func(d *appsv1.Deployment, _ *corev1.Service) { d.Annotations[hubv1.HubGenerationAnnotation] = "1" },
			changed: true,
		},
		{
			name:    "a Deployment deleted and recreated is a change",
			edit:    func(d *appsv1.Deployment, _ *corev1.Service) { d.UID = "other-uid" },
			changed: true,
		},
		{
			name:    "any Service write is a change: it has no generation",
			edit:    func(_ *appsv1.Deployment, s *corev1.Service) { s.ResourceVersion = "300" },
			changed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d, err := Render(newMyResource(), prod)
			g.Expect(err).NotTo(HaveOccurred())
			depIntent, svcIntent, err := intents(d)
			g.Expect(err).NotTo(HaveOccurred())
			dep, svc := memberVersion(g, d)
			depBefore, svcBefore := depIntent.fingerprint(dep), svcIntent.fingerprint(svc)
			tt.edit(dep, svc)
			changed := depIntent.fingerprint(dep) != depBefore || svcIntent.fingerprint(svc) != svcBefore
			g.Expect(changed).To(Equal(tt.changed))
		})
	}
}

func TestAppliedCache(t *testing.T) {
	g := NewWithT(t)
	var c appliedCache
	k := appliedKey{cluster: "m1", kind: kindDeployment, namespace: "team-a", name: "web"}
	intent, other := digest{1}, digest{2}
	v1, v2, v3 := digest{11}, digest{12}, digest{13}

	g.Expect(c.current(k, intent, v1, "10")).To(BeFalse(), "nothing applied yet by this process")
	c.record(k, appliedRecord{intent: intent, beforeRV: "10", after: v2})
	g.Expect(c.current(k, intent, v2, "11")).To(BeTrue(), "the version our apply left")
	g.Expect(c.current(k, intent, v1, "10")).To(BeTrue(), "the very version it was applied over: the cache has not caught up with our write")
	g.Expect(c.current(k, intent, v1, "12")).To(BeFalse(), "the fingerprint from before, at a later version: the same edit made again")
	g.Expect(c.current(k, intent, v3, "12")).To(BeFalse(), "a later version: someone changed it")
	g.Expect(c.current(k, other, v2, "11")).To(BeFalse(), "a new intent")
	g.Expect(c.current(appliedKey{cluster: "m2", kind: k.kind, namespace: k.namespace, name: k.name}, intent, v2, "11")).
		To(BeFalse(), "another cluster's object")

	c.forget(k)
	g.Expect(c.current(k, intent, v2, "11")).To(BeFalse())

	c.record(k, appliedRecord{intent: intent, after: v2})
	svc := appliedKey{cluster: "m1", kind: kindService, namespace: "team-a", name: "web"}
	c.record(svc, appliedRecord{intent: intent, after: v2})
	c.record(appliedKey{cluster: "m2", kind: kindService, namespace: "team-a", name: "web"}, appliedRecord{intent: intent, after: v2})
	c.forgetCluster("m1")
	g.Expect(c.records).To(HaveLen(1), "only m2's record is left")
}

func TestAppliedCacheIsBounded(t *testing.T) {
	g := NewWithT(t)
	var c appliedCache
	for i := range maxApplied + 10 {
		c.record(appliedKey{cluster: "m1", kind: kindDeployment, namespace: "ns", name: strconv.Itoa(i)}, appliedRecord{})
	}
	g.Expect(c.records).To(HaveLen(maxApplied))
}

// TestFingerprintOutlivesTheApply guards against the client decoding the
// member's answer into the apply configuration: labels a webhook added
// there must not become labels we set.
func TestFingerprintOutlivesTheApply(t *testing.T) {
	g := NewWithT(t)
	d, err := Render(newMyResource(), prod)
	g.Expect(err).NotTo(HaveOccurred())
	in, _, err := intents(d)
	g.Expect(err).NotTo(HaveOccurred())
	dep, _ := memberVersion(g, d)
	dep.Labels["injected-by"] = "webhook"
	before := in.fingerprint(dep)

	answer, err := json.Marshal(dep)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Unmarshal(answer, in.config)).To(Succeed())
	g.Expect(in.fingerprint(dep)).To(Equal(before))
	again, err := Render(newMyResource(), prod)
	g.Expect(err).NotTo(HaveOccurred())
	fresh, _, err := intents(again)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fresh.fingerprint(dep)).To(Equal(before), "the next reconcile's intent sees the same version")
}
