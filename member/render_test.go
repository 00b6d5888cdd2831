package member

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	hubv1 "example.com/hub-operator/api/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// newMyResource is a valid MyResource with two containers and a Service, the
// base every test case mutates.
func newMyResource() *hubv1.MyResource {
	return &hubv1.MyResource{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a", UID: "0b9a3c1e-uid", Generation: 3},
		Spec: hubv1.MyResourceSpec{
			Deployment: hubv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec: corev1.PodSpec{
						InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1"}},
						Containers: []corev1.Container{
							{
								Name:  "app",
								Image: "nginx:1.27",
								Env:   []corev1.EnvVar{{Name: "MODE", Value: "base"}, {Name: "LEVEL", Value: "info"}},
								Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
								Resources: corev1.ResourceRequirements{
									Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
								},
							},
							{Name: "sidecar", Image: "envoy:1.30"},
						},
					},
				},
			},
			Service: &hubv1.ServiceSpec{
				Type:  corev1.ServiceTypeClusterIP,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}, {Name: "admin", Port: 9000}},
			},
		},
	}
}

var prod = Target{Name: "m1", Labels: map[string]string{"env": "prod", "region": "eu"}}

// typed decodes what Render made into the objects a member decodes from an
// apply, before its defaults, so tests can read them as plain objects.
func typed(g Gomega, d *Desired) (*appsv1.Deployment, *corev1.Service) {
	dep := &appsv1.Deployment{}
	b, err := json.Marshal(d.Deployment)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Unmarshal(b, dep)).To(Succeed())
	if d.Service == nil {
		return dep, nil
	}
	svc := &corev1.Service{}
	b, err = json.Marshal(d.Service)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Unmarshal(b, svc)).To(Succeed())
	return dep, svc
}

func container(dep *appsv1.Deployment, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{dep.Spec.Template.Spec.Containers, dep.Spec.Template.Spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

func TestRender(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*hubv1.MyResource)
		cluster   Target
		replicas  int32
		images    map[string]string // container name -> image
		env       []corev1.EnvVar   // env of container "app"
		noService bool
	}{
		{
			name:     "no overrides renders the base template",
			cluster:  prod,
			replicas: 2,
			images:   map[string]string{"app": "nginx:1.27", "sidecar": "envoy:1.30", "init": "busybox:1"},
			env:      []corev1.EnvVar{{Name: "MODE", Value: "base"}, {Name: "LEVEL", Value: "info"}},
		},
		{
			name: "absent replicas default to 1",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Deployment.Replicas = nil
			},
			cluster:  prod,
			replicas: 1,
			images:   map[string]string{"app": "nginx:1.27"},
		},
		{
			name: "override by cluster name replaces replicas",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, Replicas: ptr.To[int32](5)}}
			},
			cluster:  prod,
			replicas: 5,
		},
		{
			name: "override naming another cluster does not apply",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{Selection: hubv1.Selection{ClusterNames: []string{"m2"}}, Replicas: ptr.To[int32](5)}}
			},
			cluster:  prod,
			replicas: 2,
		},
		{
			name: "override by selector matching the cluster labels applies",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{
					Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "region", Operator: metav1.LabelSelectorOpIn, Values: []string{"eu", "us"}},
					}}},
					Replicas: ptr.To[int32](7),
				}}
			},
			cluster:  prod,
			replicas: 7,
		},
		{
			name: "override by selector not matching does not apply",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{
					Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}},
					Replicas:  ptr.To[int32](7),
				}}
			},
			cluster:  prod,
			replicas: 2,
		},
		{
			name: "empty selector selects every cluster",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}}, Replicas: ptr.To[int32](4)}}
			},
			cluster:  Target{Name: "bare"},
			replicas: 4,
		},
		{
			name: "name OR selector: a listed name applies even when the selector does not match",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{
					Selection: hubv1.Selection{ClusterNames: []string{"m1"}, ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}},
					Replicas:  ptr.To[int32](9),
				}}
			},
			cluster:  prod,
			replicas: 9,
		},
		{
			name: "later overrides win",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{
					{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, Replicas: ptr.To[int32](3), Image: "nginx:first"},
					{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}, Replicas: ptr.To[int32](6)},
					{Selection: hubv1.Selection{ClusterNames: []string{"m2"}}, Replicas: ptr.To[int32](8)},
				}
			},
			cluster:  prod,
			replicas: 6,
			images:   map[string]string{"app": "nginx:first", "sidecar": "nginx:first"},
		},
		{
			name: "image without containerName replaces every regular container's image but not init containers",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, Image: "registry/eu:2"}}
			},
			cluster:  prod,
			replicas: 2,
			images:   map[string]string{"app": "registry/eu:2", "sidecar": "registry/eu:2", "init": "busybox:1"},
		},
		{
			name: "image with containerName replaces only that container",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, Image: "envoy:2", ContainerName: "sidecar"}}
			},
			cluster:  prod,
			replicas: 2,
			images:   map[string]string{"app": "nginx:1.27", "sidecar": "envoy:2"},
		},
		{
			name: "containerName may name an init container",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, Image: "busybox:2", ContainerName: "init"}}
			},
			cluster:  prod,
			replicas: 2,
			images:   map[string]string{"app": "nginx:1.27", "init": "busybox:2"},
		},
		{
			name: "env replaces by name in place and appends new names",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{
					Selection:     hubv1.Selection{ClusterNames: []string{"m1"}},
					ContainerName: "app",
					Env:           []corev1.EnvVar{{Name: "REGION", Value: "eu"}, {Name: "MODE", Value: "prod"}},
				}}
			},
			cluster:  prod,
			replicas: 2,
			env:      []corev1.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "LEVEL", Value: "info"}, {Name: "REGION", Value: "eu"}},
		},
		{
			name: "env of successive overrides accumulates and the last value wins",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{
					{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "LEVEL", Value: "debug"}}},
					{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, Env: []corev1.EnvVar{{Name: "A", Value: "2"}}},
				}
			},
			cluster:  prod,
			replicas: 2,
			env:      []corev1.EnvVar{{Name: "MODE", Value: "base"}, {Name: "LEVEL", Value: "debug"}, {Name: "A", Value: "2"}},
		},
		{
			name: "absent service renders no Service",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Service = nil
			},
			cluster:   prod,
			replicas:  2,
			noService: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mr := newMyResource()
			if tt.mutate != nil {
				tt.mutate(mr)
			}
			before := mr.DeepCopy()

			d, err := Render(mr, tt.cluster)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(mr).To(Equal(before), "Render must not modify its input")

			dep, _ := typed(g, d)
			g.Expect(dep.Spec.Replicas).To(HaveValue(Equal(tt.replicas)))
			for name, image := range tt.images {
				c := container(dep, name)
				g.Expect(c).NotTo(BeNil(), "container %s", name)
				g.Expect(c.Image).To(Equal(image), "image of container %s", name)
			}
			if tt.env != nil {
				g.Expect(container(dep, "app").Env).To(Equal(tt.env))
			}
			if tt.noService {
				g.Expect(d.Service).To(BeNil())
			} else {
				g.Expect(d.Service).NotTo(BeNil())
			}
		})
	}
}

func TestRenderContractMetadata(t *testing.T) {
	g := NewWithT(t)
	mr := newMyResource()
	d, err := Render(mr, prod)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(d.Namespace.Name).To(Equal("team-a"))
	g.Expect(d.Namespace.Labels).To(HaveKeyWithValue(hubv1.ManagedByLabel, hubv1.ManagedByValue))

	dep, svc := typed(g, d)
	for _, obj := range []metav1.Object{dep, svc} {
		g.Expect(obj.GetNamespace()).To(Equal("team-a"))
		g.Expect(obj.GetName()).To(Equal("web"))
		g.Expect(obj.GetLabels()).To(Equal(map[string]string{
			hubv1.ManagedByLabel:      hubv1.ManagedByValue,
			hubv1.OwnerNamespaceLabel: "team-a",
			hubv1.OwnerNameLabel:      "web",
		}))
		g.Expect(obj.GetAnnotations()).To(HaveKeyWithValue(hubv1.OwnerUIDAnnotation, "0b9a3c1e-uid"))
		g.Expect(obj.GetAnnotations()).To(HaveKeyWithValue(hubv1.HubGenerationAnnotation, "3"))
		g.Expect(obj.GetAnnotations()).To(HaveLen(2), "nothing but the contract's annotations and the hub generation")
	}
	g.Expect(dep.Spec.Selector.MatchLabels).To(Equal(map[string]string{hubv1.SelectorLabel: "web"}))
	// Pods and ReplicaSets inherit the owner labels, so the member cache keeps
	// them and their events map back to the MyResource; the selector stays as it was.
	g.Expect(dep.Spec.Template.Labels).To(Equal(map[string]string{
		"app": "web", hubv1.SelectorLabel: "web",
		hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: "team-a", hubv1.OwnerNameLabel: "web",
	}))
	g.Expect(svc.Spec.Selector).To(Equal(map[string]string{hubv1.SelectorLabel: "web"}))
	g.Expect(dep.APIVersion).To(Equal("apps/v1"))
	g.Expect(dep.Kind).To(Equal("Deployment"))
	g.Expect(svc.Kind).To(Equal("Service"))

	// Named target ports are kept; an unset one is not sent (the member
	// defaults it to the port) rather than claimed as a zero.
	g.Expect(svc.Spec.Ports[0].TargetPort).To(Equal(intstr.FromString("http")))
	g.Expect(d.Service.Spec.Ports[1].TargetPort).To(BeNil())
	g.Expect(d.Service.Spec.Ports[1].Port).To(HaveValue(Equal(int32(9000))))
}

// TestRenderHash checks the intent hash, which decides whether an apply is
// sent: it changes exactly when what would be applied changes.
func TestRenderHash(t *testing.T) {
	hashes := func(g Gomega, mr *hubv1.MyResource, cluster Target) (dep, svc digest) {
		d, err := Render(mr, cluster)
		g.Expect(err).NotTo(HaveOccurred())
		depIntent, svcIntent, err := intents(d)
		g.Expect(err).NotTo(HaveOccurred())
		return depIntent.hash, svcIntent.hash
	}
	tests := []struct {
		name       string
		mutate     func(*hubv1.MyResource)
		cluster    Target
		depChanges bool
		svcChanges bool
	}{
		{name: "same input gives the same hash", mutate: func(*hubv1.MyResource) {}, cluster: prod},
		{
			name:    "status and labels of the MyResource do not change the hash",
			cluster: prod,
			mutate: func(mr *hubv1.MyResource) {
				mr.Status.ReadyClusters = 4
				mr.Labels = map[string]string{"x": "y"}
				mr.ResourceVersion = "999"
			},
		},
		{
			name:       "an image change changes the Deployment hash only",
			cluster:    prod,
			mutate:     func(mr *hubv1.MyResource) { mr.Spec.Deployment.Template.Spec.Containers[0].Image = "nginx:1.28" },
			depChanges: true,
		},
		{
			name:       "a replica change changes the Deployment hash",
			cluster:    prod,
			mutate:     func(mr *hubv1.MyResource) { mr.Spec.Deployment.Replicas = ptr.To[int32](3) },
			depChanges: true,
		},
		{
			name:       "a port change changes the Service hash only",
			cluster:    prod,
			mutate:     func(mr *hubv1.MyResource) { mr.Spec.Service.Ports[0].Port = 8081 },
			svcChanges: true,
		},
		{
			name:       "a new hub generation changes both, so observedGeneration is stamped",
			cluster:    prod,
			mutate:     func(mr *hubv1.MyResource) { mr.Generation++ },
			depChanges: true,
			svcChanges: true,
		},
		{
			name:    "an override for this cluster changes the Deployment hash",
			cluster: prod,
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, Image: "x:1"}}
			},
			depChanges: true,
		},
		{
			name:    "an override for another cluster does not change the hash",
			cluster: prod,
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{Selection: hubv1.Selection{ClusterNames: []string{"m2"}}, Image: "x:1"}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			baseDep, baseSvc := hashes(g, newMyResource(), tt.cluster)
			mr := newMyResource()
			tt.mutate(mr)
			dep, svc := hashes(g, mr, tt.cluster)
			if tt.depChanges {
				g.Expect(dep).NotTo(Equal(baseDep))
			} else {
				g.Expect(dep).To(Equal(baseDep))
			}
			if tt.svcChanges {
				g.Expect(svc).NotTo(Equal(baseSvc))
			} else {
				g.Expect(svc).To(Equal(baseSvc))
			}
		})
	}
}

func TestRenderInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*hubv1.MyResource)
		field  string
	}{
		{
			name: "an override selector that does not parse is a permanent error naming the override",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{
					{Selection: hubv1.Selection{ClusterNames: []string{"m2"}}, Replicas: ptr.To[int32](1)},
					{
						Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
							{Key: "env", Operator: "Like", Values: []string{"p"}},
						}}},
						Replicas: ptr.To[int32](1),
					},
				}
			},
			field: "spec.overrides[1].clusterSelector",
		},
		{
			name: "an invalid selector is reported even when the cluster is listed by name",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{
					Selection: hubv1.Selection{ClusterNames: []string{"m1"}, ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"bad key!": "x"}}},
					Replicas:  ptr.To[int32](1),
				}}
			},
			field: "spec.overrides[0].clusterSelector",
		},
		{
			name: "a containerName that names no container is a permanent error",
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{{Selection: hubv1.Selection{ClusterNames: []string{"m2"}}, ContainerName: "nope", Image: "x"}}
			},
			field: "spec.overrides[0].containerName",
		},
		{
			name:   "a template without containers is a permanent error",
			mutate: func(mr *hubv1.MyResource) { mr.Spec.Deployment.Template.Spec.Containers = nil },
			field:  "spec.deployment.template.spec.containers",
		},
		{
			name:   "a name longer than a label value is a permanent error",
			mutate: func(mr *hubv1.MyResource) { mr.Name = longName },
			field:  "metadata.name",
		},
		{
			name:   "a name that is no Service name is a permanent error when a Service is wanted",
			mutate: func(mr *hubv1.MyResource) { mr.Name = "web.v2" },
			field:  "metadata.name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mr := newMyResource()
			tt.mutate(mr)
			_, err := Render(mr, prod)
			g.Expect(err).To(HaveOccurred())
			var inv *InvalidSpecError
			g.Expect(IsInvalidSpec(err)).To(BeTrue())
			g.Expect(errors.As(err, &inv)).To(BeTrue())
			g.Expect(inv.Field).To(Equal(tt.field))
			g.Expect(err.Error()).To(ContainSubstring("cluster m1"))
			g.Expect(Reason(err)).To(Equal(hubv1.ReasonInvalidSpec))
		})
	}

	t.Run("a dotted name is fine without a Service", func(t *testing.T) {
		g := NewWithT(t)
		mr := newMyResource()
		mr.Name, mr.Spec.Service = "web.v2", nil
		_, err := Render(mr, prod)
		g.Expect(err).NotTo(HaveOccurred())
	})
}

const longName = "0123456789012345678901234567890123456789012345678901234567890123"

// TestRenderGolden pins the complete rendered objects, so any change to what
// lands in members shows up in review. Regenerate with -update.
func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*hubv1.MyResource)
		cluster Target
	}{
		{name: "base", cluster: prod},
		{
			name:    "overrides",
			cluster: prod,
			mutate: func(mr *hubv1.MyResource) {
				mr.Spec.Overrides = []hubv1.Override{
					{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}, Replicas: ptr.To[int32](5), Image: "nginx:eu"},
					{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, ContainerName: "sidecar", Image: "envoy:eu", Env: []corev1.EnvVar{{Name: "REGION", Value: "eu"}}},
				}
			},
		},
		{
			name:    "no-service",
			cluster: prod,
			mutate:  func(mr *hubv1.MyResource) { mr.Spec.Service = nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mr := newMyResource()
			if tt.mutate != nil {
				tt.mutate(mr)
			}
			d, err := Render(mr, tt.cluster)
			g.Expect(err).NotTo(HaveOccurred())
			got, err := yaml.Marshal(d)
			g.Expect(err).NotTo(HaveOccurred())

			path := filepath.Join("testdata", t.Name()+".golden")
			if *update {
				g.Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
				g.Expect(os.WriteFile(path, got, 0o644)).To(Succeed())
			}
			want, err := os.ReadFile(path)
			g.Expect(err).NotTo(HaveOccurred(), "run go test ./member -run TestRenderGolden -update to create %s", path)
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("rendered objects differ from %s (-want +got); rerun with -update if intended:\n%s", path, diff)
			}
		})
	}
}
