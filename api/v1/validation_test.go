package v1_test

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// validSpec is the smallest spec the API server accepts; each case breaks
// one thing in it, so a rejection can only come from that one thing.
func validSpec() hubv1.MyResourceSpec {
	return hubv1.MyResourceSpec{
		Placement: hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"member-1"}}},
		Deployment: hubv1.DeploymentSpec{
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}
}

func withService(ports ...corev1.ServicePort) func(*hubv1.MyResourceSpec) {
	return func(s *hubv1.MyResourceSpec) { s.Service = &hubv1.ServiceSpec{Ports: ports} }
}

func withOverride(o hubv1.Override) func(*hubv1.MyResourceSpec) {
	return func(s *hubv1.MyResourceSpec) { s.Overrides = append(s.Overrides, o) }
}

func withPlacementSelector(sel *metav1.LabelSelector) func(*hubv1.MyResourceSpec) {
	return func(s *hubv1.MyResourceSpec) { s.Placement.ClusterSelector = sel }
}

func withContainers(cs ...corev1.Container) func(*hubv1.MyResourceSpec) {
	return func(s *hubv1.MyResourceSpec) { s.Deployment.Template.Spec.Containers = cs }
}

// TestCRDValidation creates MyResources on a real API server with the chart's
// CRD installed: what can never work is rejected with a message a person
// understands, and what is valid is accepted with its defaults filled in.
func TestCRDValidation(t *testing.T) {
	env := controlplane.StartForTest(t, controlplane.Options{})
	NewWithT(t).Expect(env.Hub.InstallCRDs(t.Context())).To(Succeed())
	c := env.Hub.Client

	create := func(t *testing.T, mutate func(*hubv1.MyResourceSpec)) (*hubv1.MyResource, error) {
		t.Helper()
		mr := &hubv1.MyResource{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "v-", Namespace: metav1.NamespaceDefault},
			Spec:       validSpec(),
		}
		mutate(&mr.Spec)
		return mr, c.Create(t.Context(), mr)
	}

	invalid := []struct {
		name   string
		mutate func(*hubv1.MyResourceSpec)
		// want are substrings of the error: the field and a readable reason.
		want []string
	}{
		{
			name:   "negative deployment replicas are rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Deployment.Replicas = ptr.To[int32](-1) },
			want:   []string{"spec.deployment.replicas", "greater than or equal to 0"},
		},
		{
			name: "negative override replicas are rejected",
			mutate: withOverride(hubv1.Override{
				Selection: hubv1.Selection{ClusterNames: []string{"member-1"}},
				Replicas:  ptr.To[int32](-3),
			}),
			want: []string{"spec.overrides[0].replicas", "greater than or equal to 0"},
		},
		{
			name:   "a pod template with an empty container list is rejected",
			mutate: withContainers([]corev1.Container{}...),
			want:   []string{"must list at least one container"},
		},
		{
			name:   "a pod template without a container list is rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Deployment.Template.Spec.Containers = nil },
			want:   []string{"spec.deployment.template.spec.containers", "Required value"},
		},
		{
			name:   "a container without a name is rejected",
			mutate: withContainers(corev1.Container{Image: "nginx"}),
			want:   []string{"spec.deployment.template.spec.containers", "needs a name"},
		},
		{
			name:   "a container without an image is rejected",
			mutate: withContainers(corev1.Container{Name: "web"}),
			want:   []string{"spec.deployment.template.spec.containers", "needs an image"},
		},
		{
			name: "an init container without an image is rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Deployment.Template.Spec.InitContainers = []corev1.Container{{Name: "init"}}
			},
			want: []string{"spec.deployment.template.spec.initContainers", "needs a name and an image"},
		},
		{
			name: "a restartPolicy a Deployment cannot run is rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Deployment.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
			},
			want: []string{"spec.deployment.template.spec.restartPolicy", "restartPolicy Always"},
		},
		{
			name:   "an override that selects no cluster is rejected",
			mutate: withOverride(hubv1.Override{Image: "nginx:1.28"}),
			want:   []string{"spec.overrides[0]", "an override must select clusters"},
		},
		{
			name:   "an override that changes nothing is rejected",
			mutate: withOverride(hubv1.Override{Selection: hubv1.Selection{ClusterNames: []string{"member-1"}}}),
			want:   []string{"spec.overrides[0]", "an override must change something"},
		},
		{
			name: "an override with containerName but nothing to narrow is rejected",
			mutate: withOverride(hubv1.Override{
				Selection:     hubv1.Selection{ClusterNames: []string{"member-1"}},
				ContainerName: "web",
				Replicas:      ptr.To[int32](2),
			}),
			want: []string{"spec.overrides[0]", "containerName narrows image or env"},
		},
		{
			name:   "a Service without ports is rejected",
			mutate: withService(),
			want:   []string{"spec.service.ports", "Required value"},
		},
		{
			name: "a Service with an empty port list is rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Service = &hubv1.ServiceSpec{Ports: []corev1.ServicePort{}}
			},
			want: []string{"spec.service.ports", "at least 1 items"},
		},
		{
			name:   "a Service port above 65535 is rejected",
			mutate: withService(corev1.ServicePort{Port: 70000}),
			want:   []string{"spec.service.ports[0].port", "between 1 and 65535"},
		},
		{
			name:   "a Service port of 0 is rejected",
			mutate: withService(corev1.ServicePort{Port: 0}),
			want:   []string{"spec.service.ports[0].port", "between 1 and 65535"},
		},
		{
			name:   "a numeric targetPort out of range is rejected",
			mutate: withService(corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(-8)}),
			want:   []string{"spec.service.ports[0].targetPort", "between 1 and 65535"},
		},
		{
			name:   "an unknown port protocol is rejected",
			mutate: withService(corev1.ServicePort{Port: 80, Protocol: "QUIC"}),
			want:   []string{"spec.service.ports[0].protocol", "TCP, UDP or SCTP"},
		},
		{
			name:   "several Service ports without names are rejected",
			mutate: withService(corev1.ServicePort{Port: 80}, corev1.ServicePort{Port: 443}),
			want:   []string{"spec.service.ports", "needs a name on every port"},
		},
		{
			name: "duplicate Service ports are rejected",
			mutate: withService(
				corev1.ServicePort{Name: "a", Port: 80}, corev1.ServicePort{Name: "b", Port: 80}),
			want: []string{"spec.service.ports[1]", `Duplicate value: {"port":80,"protocol":"TCP"}`},
		},
		{
			name: "duplicate Service port names are rejected",
			mutate: withService(
				corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "http", Port: 8080}),
			want: []string{"spec.service.ports", "Service port names must be unique"},
		},
		{
			name:   "a nodePort on a ClusterIP Service is rejected",
			mutate: withService(corev1.ServicePort{Port: 80, NodePort: 30080}),
			want:   []string{"spec.service.ports", "nodePort needs service.type NodePort or LoadBalancer"},
		},
		{
			name: "an unknown service type is rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Service = &hubv1.ServiceSpec{Type: "Headless", Ports: []corev1.ServicePort{{Port: 80}}}
			},
			want: []string{"spec.service.type", `Unsupported value: "Headless"`, `"ClusterIP"`},
		},
		{
			name:   "an unknown deletionPolicy is rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.DeletionPolicy = "Keep" },
			want:   []string{"spec.deletionPolicy", `Unsupported value: "Keep"`, `"Delete", "Orphan"`},
		},
		{
			name: "a clusterSelector with an unknown operator is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "region", Operator: "Near", Values: []string{"eu"}},
			}}),
			want: []string{
				"spec.placement.clusterSelector.matchExpressions[0].operator",
				`Unsupported value: "Near": supported values: "In", "NotIn", "Exists", "DoesNotExist"`,
			},
		},
		{
			name: "a clusterSelector In without values is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "region", Operator: metav1.LabelSelectorOpIn},
			}}),
			want: []string{"spec.placement.clusterSelector.matchExpressions", "In and NotIn need at least one value"},
		},
		{
			name: "a clusterSelector Exists with values is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "region", Operator: metav1.LabelSelectorOpExists, Values: []string{"eu"}},
			}}),
			want: []string{"spec.placement.clusterSelector.matchExpressions", "Exists and DoesNotExist take no values"},
		},
		{
			name: "a clusterSelector with an invalid label key is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{
				MatchLabels: map[string]string{"not a key!": "x"},
			}),
			want: []string{"spec.placement.clusterSelector.matchLabels", "each key must be a label key"},
		},
		{
			name: "a clusterSelector with an invalid label value is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{
				MatchLabels: map[string]string{"region": "eu west"},
			}),
			want: []string{"spec.placement.clusterSelector.matchLabels", "each value must be a label value"},
		},
		{
			name: "a clusterSelector with an invalid matchExpressions key is rejected",
			mutate: withPlacementSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "-region", Operator: metav1.LabelSelectorOpExists},
			}}),
			want: []string{"spec.placement.clusterSelector.matchExpressions", "each key must be a label key"},
		},
		{
			name: "an override clusterSelector with an unknown operator is rejected",
			mutate: withOverride(hubv1.Override{
				Image: "nginx:1.28",
				Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "region", Operator: "in", Values: []string{"eu"}},
				}}},
			}),
			want: []string{"spec.overrides[0].clusterSelector.matchExpressions[0].operator", `Unsupported value: "in"`},
		},
		{
			name: "an override clusterSelector In without values is rejected",
			mutate: withOverride(hubv1.Override{
				Replicas: ptr.To[int32](2),
				Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "region", Operator: metav1.LabelSelectorOpNotIn},
				}}},
			}),
			want: []string{"spec.overrides[0].clusterSelector.matchExpressions", "In and NotIn need at least one value"},
		},
		{
			name:   "an empty cluster name is rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Placement.ClusterNames = []string{""} },
			want:   []string{"spec.placement.clusterNames[0]", "at least 1 chars long"},
		},
		{
			name:   "a cluster name no Secret can have is rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Placement.ClusterNames = []string{"Member_1"} },
			want:   []string{"spec.placement.clusterNames[0]", `Invalid value: "Member_1"`, "should match '^[a-z0-9]"},
		},
		{
			name:   "duplicate clusterNames are rejected",
			mutate: func(s *hubv1.MyResourceSpec) { s.Placement.ClusterNames = []string{"member-1", "member-1"} },
			want:   []string{"spec.placement.clusterNames[1]", `Duplicate value: "member-1"`},
		},
		{
			name: "duplicate override clusterNames are rejected",
			mutate: withOverride(hubv1.Override{
				Selection: hubv1.Selection{ClusterNames: []string{"member-2", "member-2"}},
				Image:     "nginx:1.28",
			}),
			want: []string{"spec.overrides[0].clusterNames[1]", `Duplicate value: "member-2"`},
		},
		{
			name: "an empty override cluster name is rejected",
			mutate: withOverride(hubv1.Override{
				Selection: hubv1.Selection{ClusterNames: []string{""}},
				Image:     "nginx:1.28",
			}),
			want: []string{"spec.overrides[0].clusterNames[0]", "at least 1 chars long"},
		},
		{
			name: "more than 100 overrides are rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				for range 101 {
					s.Overrides = append(s.Overrides, hubv1.Override{Selection: hubv1.Selection{ClusterNames: []string{"member-1"}}, Image: "nginx:1.28"})
				}
			},
			want: []string{"spec.overrides", "must have at most 100 items"},
		},
		{
			name: "more than 1000 clusterNames are rejected",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Placement.ClusterNames = nil
				for i := range 1001 {
					s.Placement.ClusterNames = append(s.Placement.ClusterNames, fmt.Sprintf("member-%d", i))
				}
			},
			want: []string{"spec.placement.clusterNames", "must have at most 1000 items"},
		},
		{
			name: "an override containerName longer than a container name can be is rejected",
			mutate: withOverride(hubv1.Override{
				Selection:     hubv1.Selection{ClusterNames: []string{"member-1"}},
				ContainerName: strings.Repeat("c", 64),
				Image:         "nginx:1.28",
			}),
			want: []string{"spec.overrides[0].containerName", "63"},
		},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := create(t, tt.mutate)
			g.Expect(err).To(HaveOccurred())
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
			for _, w := range tt.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}

	valid := []struct {
		name   string
		mutate func(*hubv1.MyResourceSpec)
		check  func(g Gomega, got *hubv1.MyResource)
	}{
		{
			name:   "a minimal spec gets replicas 1 and deletionPolicy Delete",
			mutate: func(*hubv1.MyResourceSpec) {},
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Deployment.Replicas).To(HaveValue(Equal(int32(1))))
				g.Expect(got.Spec.DeletionPolicy).To(Equal(hubv1.DeletionPolicyDelete))
				g.Expect(got.Spec.Service).To(BeNil())
			},
		},
		{
			name:   "a Service gets type ClusterIP and protocol TCP",
			mutate: withService(corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http")}),
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Service.Type).To(Equal(corev1.ServiceTypeClusterIP))
				g.Expect(got.Spec.Service.Ports).To(ConsistOf(HaveField("Protocol", corev1.ProtocolTCP)))
			},
		},
		{
			name: "pod template labels and annotations are kept, not pruned",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Deployment.Template.Labels = map[string]string{"app": "web"}
				s.Deployment.Template.Annotations = map[string]string{"example.com/note": "kept"}
			},
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Deployment.Template.Labels).To(HaveKeyWithValue("app", "web"))
				g.Expect(got.Spec.Deployment.Template.Annotations).To(HaveKeyWithValue("example.com/note", "kept"))
			},
		},
		{
			name: "a full spec with named ports, selectors and overrides is accepted as written",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Deployment.Replicas = ptr.To[int32](0)
				s.Deployment.Template.Spec.Containers = append(s.Deployment.Template.Spec.Containers,
					corev1.Container{Name: "sidecar", Image: "busybox"})
				s.Placement.ClusterSelector = &metav1.LabelSelector{
					MatchLabels: map[string]string{"example.com/env": "prod"},
					MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "region", Operator: metav1.LabelSelectorOpIn, Values: []string{"eu", "us"}},
						{Key: "deprecated", Operator: metav1.LabelSelectorOpDoesNotExist},
					},
				}
				s.Service = &hubv1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{
					{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080},
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
					{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
				}}
				s.Overrides = []hubv1.Override{
					{Selection: hubv1.Selection{ClusterNames: []string{"member-1"}}, Replicas: ptr.To[int32](5)},
					{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}}, ContainerName: "sidecar", Image: "busybox:1.37"},
					{Selection: hubv1.Selection{ClusterNames: []string{"member-2"}}, Env: []corev1.EnvVar{{Name: "LOG", Value: "debug"}}},
				}
				s.DeletionPolicy = hubv1.DeletionPolicyOrphan
				s.Suspend = true
			},
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Deployment.Replicas).To(HaveValue(Equal(int32(0))))
				g.Expect(got.Spec.Service.Type).To(Equal(corev1.ServiceTypeNodePort))
				g.Expect(got.Spec.Overrides).To(HaveLen(3))
				g.Expect(got.Spec.Overrides[1].ClusterSelector).NotTo(BeNil(), "an empty selector selects every cluster")
				g.Expect(got.Spec.DeletionPolicy).To(Equal(hubv1.DeletionPolicyOrphan))
			},
		},
		{
			name: "a placement that selects nothing yet is accepted",
			mutate: func(s *hubv1.MyResourceSpec) {
				s.Placement = hubv1.Placement{}
			},
			check: func(g Gomega, got *hubv1.MyResource) {
				g.Expect(got.Spec.Placement.ClusterNames).To(BeEmpty())
				g.Expect(got.Spec.Placement.ClusterSelector).To(BeNil())
			},
		},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mr, err := create(t, tt.mutate)
			g.Expect(err).NotTo(HaveOccurred())
			tt.check(g, mr)
		})
	}
}
