package member

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	hubv1 "example.com/hub-operator/api/v1"
)

// serverDefaulted returns the rendered Deployment the way a member API
// server hands it back: with the metadata it owns, the defaults it fills in,
// a status, and fields of other managers.
func serverDefaulted(d *appsv1.Deployment) *appsv1.Deployment {
	o := d.DeepCopy()
	o.TypeMeta = metav1.TypeMeta{}
	o.UID = "member-uid"
	o.ResourceVersion = "42"
	o.Generation = 1
	o.CreationTimestamp = metav1.Now()
	o.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "hub-operator", Operation: metav1.ManagedFieldsOperationApply}}
	o.Annotations["deployment.kubernetes.io/revision"] = "1"
	o.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	o.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	o.Spec.Strategy = appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromString("25%")),
			MaxSurge:       ptr.To(intstr.FromString("25%")),
		},
	}
	pod := &o.Spec.Template.Spec
	pod.RestartPolicy = corev1.RestartPolicyAlways
	pod.TerminationGracePeriodSeconds = ptr.To[int64](30)
	pod.DNSPolicy = corev1.DNSClusterFirst
	pod.SecurityContext = &corev1.PodSecurityContext{}
	pod.SchedulerName = corev1.DefaultSchedulerName
	for i := range pod.Containers {
		c := &pod.Containers[i]
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
		c.ImagePullPolicy = corev1.PullIfNotPresent
		for j := range c.Ports {
			c.Ports[j].Protocol = corev1.ProtocolTCP
		}
	}
	o.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2}
	return o
}

func TestInSync(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*appsv1.Deployment)
		inSync bool
		diff   string
	}{
		{name: "server defaults, status and server metadata are not drift", edit: func(*appsv1.Deployment) {}, inSync: true},
		{
			name: "labels and annotations added in the member are not drift",
			edit: func(o *appsv1.Deployment) {
				o.Labels["team"] = "x"
				o.Annotations["note"] = "y"
			},
			inSync: true,
		},
		{
			name: "a quantity the server writes in canonical form is not drift",
			edit: func(o *appsv1.Deployment) {
				o.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("0.1")
			},
			inSync: true,
		},
		{
			name: "an image edited in the member is drift",
			edit: func(o *appsv1.Deployment) { o.Spec.Template.Spec.Containers[0].Image = "evil:1" },
			diff: "spec.template.spec.containers[0].image",
		},
		{
			name: "replicas scaled in the member are drift",
			edit: func(o *appsv1.Deployment) { o.Spec.Replicas = ptr.To[int32](9) },
			diff: "spec.replicas",
		},
		{
			name: "a removed owner label is drift",
			edit: func(o *appsv1.Deployment) { delete(o.Labels, hubv1.OwnerNameLabel) },
			diff: "metadata.labels." + hubv1.OwnerNameLabel,
		},
		{
			name: "an env var removed in the member is drift",
			edit: func(o *appsv1.Deployment) {
				o.Spec.Template.Spec.Containers[0].Env = o.Spec.Template.Spec.Containers[0].Env[:1]
			},
			diff: "spec.template.spec.containers[0].env",
		},
		{
			name: "an argument appended in the member is drift",
			edit: func(o *appsv1.Deployment) {
				o.Spec.Template.Spec.Containers[1].Args = append(o.Spec.Template.Spec.Containers[1].Args, "--debug")
			},
			diff: "spec.template.spec.containers[1].args",
		},
		{
			name: "a different spec hash is out of sync whatever the fields say",
			edit: func(o *appsv1.Deployment) { o.Annotations[hubv1.SpecHashAnnotation] = "old" },
			diff: "metadata.annotations." + hubv1.SpecHashAnnotation,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mr := newMyResource()
			mr.Spec.Deployment.Template.Spec.Containers[1].Args = []string{"--config", "/etc/envoy.yaml"}
			d, err := Render(mr, prod)
			g.Expect(err).NotTo(HaveOccurred())
			observed := serverDefaulted(d.Deployment)
			tt.edit(observed)

			ok, diff, err := inSync(d.Deployment, observed)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ok).To(Equal(tt.inSync))
			g.Expect(diff).To(Equal(tt.diff))
		})
	}
}

func TestInSyncService(t *testing.T) {
	g := NewWithT(t)
	d, err := Render(newMyResource(), prod)
	g.Expect(err).NotTo(HaveOccurred())
	o := d.Service.DeepCopy()
	o.Spec.ClusterIP, o.Spec.ClusterIPs = "10.0.0.7", []string{"10.0.0.7"}
	o.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	o.Spec.SessionAffinity = corev1.ServiceAffinityNone
	for i := range o.Spec.Ports {
		o.Spec.Ports[i].Protocol = corev1.ProtocolTCP
	}

	ok, diff, err := inSync(d.Service, o)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeTrue(), "server-allocated and defaulted Service fields are not drift, got diff at %s", diff)

	o.Spec.Ports[1].TargetPort = intstr.FromInt32(9999)
	ok, diff, err = inSync(d.Service, o)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeFalse())
	g.Expect(diff).To(Equal("spec.ports[1].targetPort"))
}

func TestDrift(t *testing.T) {
	tests := []struct {
		name              string
		desired, observed any
		diff              string
	}{
		{name: "equal scalars", desired: "a", observed: "a"},
		{name: "numbers compare by value across types", desired: int64(3), observed: float64(3)},
		{name: "different numbers", desired: int64(3), observed: int64(4), diff: "."},
		{name: "a bool against a string", desired: true, observed: "true", diff: "."},
		{name: "an extra observed key is fine", desired: map[string]any{"a": "1"}, observed: map[string]any{"a": "1", "b": "2"}},
		{name: "a missing key is drift", desired: map[string]any{"a": "1"}, observed: map[string]any{}, diff: "a"},
		{name: "an empty desired map matches a filled one", desired: map[string]any{"s": map[string]any{}}, observed: map[string]any{"s": map[string]any{"x": "y"}}},
		{name: "list items may gain defaulted fields", desired: []any{map[string]any{"n": "a"}}, observed: []any{map[string]any{"n": "a", "p": "TCP"}}},
		{name: "a longer observed list is drift", desired: []any{"a"}, observed: []any{"a", "b"}, diff: "."},
		{name: "a list against a map is drift", desired: map[string]any{"l": []any{"a"}}, observed: map[string]any{"l": map[string]any{}}, diff: "l"},
		{name: "nested paths are reported", desired: map[string]any{"a": []any{map[string]any{"b": "1"}}}, observed: map[string]any{"a": []any{map[string]any{"b": "2"}}}, diff: "a[0].b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(drift(tt.desired, tt.observed, "")).To(Equal(tt.diff))
		})
	}
}

func TestApplyPayload(t *testing.T) {
	g := NewWithT(t)
	d, err := Render(newMyResource(), prod)
	g.Expect(err).NotTo(HaveOccurred())
	u, err := applyPayload(d.Deployment)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(u.Object).NotTo(HaveKey("status"), "status is not ours to apply")
	g.Expect(u.GetAPIVersion()).To(Equal("apps/v1"))
	g.Expect(u.GetKind()).To(Equal("Deployment"))
	meta := u.Object["metadata"].(map[string]any)
	g.Expect(meta).NotTo(HaveKey("creationTimestamp"), "a null would ask the server to drop the field")
	tmplMeta := u.Object["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)
	g.Expect(tmplMeta).NotTo(HaveKey("creationTimestamp"))
	g.Expect(d.Deployment.Status).To(Equal(appsv1.DeploymentStatus{}), "applyPayload must not modify the rendered object")
}
