package member

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	hubv1 "example.com/hub-operator/api/v1"
)

// FuzzRender checks that Render never panics and that whatever it renders
// carries the contract's ownership labels and annotation (on the objects and
// on the pod template), so nothing it writes can escape the cache of owned
// objects or be mistaken for someone else's. Seeds, overrides included, are
// in testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	f.Add("web", "team-a", "m1", "env", "prod", "env in (prod)", "nginx:1", "", "A", int32(2), true)
	f.Add("web", "team-a", "m1", "env", "prod", "", "", "app", "", int32(0), false)
	f.Add("x", "ns", "", "", "", "!env", "img", "nope", "B", int32(-1), true)
	f.Add("web.v2", "team-a", "m2", "a/b", "c", "a/b notin (c)", "", "init", "", int32(5), true)
	f.Add("", "", "m1", "k", "v", "k=", "i", "sidecar", "C", int32(1), false)

	f.Fuzz(func(t *testing.T, name, namespace, cluster, labelKey, labelValue, selector, image, containerName, envName string, replicas int32, service bool) {
		mr := newMyResource()
		mr.Name, mr.Namespace = name, namespace
		if !service {
			mr.Spec.Service = nil
		}
		var sel *metav1.LabelSelector
		if selector != "" {
			var err error
			if sel, err = metav1.ParseToLabelSelector(selector); err != nil {
				// Not every string parses; feed a raw requirement instead so
				// invalid selectors reach Render too.
				sel = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: selector, Operator: metav1.LabelSelectorOperator(labelValue), Values: []string{labelKey}},
				}}
			}
		}
		o := hubv1.Override{Selection: hubv1.Selection{ClusterNames: []string{cluster}, ClusterSelector: sel}, Image: image, ContainerName: containerName}
		if replicas >= 0 {
			o.Replicas = ptr.To(replicas)
		}
		if envName != "" {
			o.Env = []corev1.EnvVar{{Name: envName, Value: labelValue}}
		}
		mr.Spec.Overrides = []hubv1.Override{o}

		d, err := Render(mr, Target{Name: cluster, Labels: map[string]string{labelKey: labelValue}})
		if err != nil {
			var inv *InvalidSpecError
			if !errors.As(err, &inv) {
				t.Fatalf("Render returned an error that is not an InvalidSpecError: %v", err)
			}
			return
		}
		if _, _, err := intents(d); err != nil {
			t.Fatalf("the rendered objects cannot be hashed for the apply decision: %v", err)
		}
		dep, svc := typed(NewWithT(t), d)
		objs := []metav1.Object{dep}
		if service {
			if svc == nil {
				t.Fatal("spec.service is set but no Service was rendered")
			}
			objs = append(objs, svc)
		} else if svc != nil {
			t.Fatal("spec.service is absent but a Service was rendered")
		}
		for _, obj := range objs {
			l := obj.GetLabels()
			if l[hubv1.ManagedByLabel] != hubv1.ManagedByValue || l[hubv1.OwnerNamespaceLabel] != namespace || l[hubv1.OwnerNameLabel] != name {
				t.Fatalf("%T lacks the ownership labels: %v", obj, l)
			}
			if obj.GetAnnotations()[hubv1.OwnerUIDAnnotation] != string(mr.UID) {
				t.Fatalf("%T lacks the owner-uid annotation", obj)
			}
			if obj.GetNamespace() != namespace || obj.GetName() != name {
				t.Fatalf("%T is rendered as %s/%s, not named like its MyResource", obj, obj.GetNamespace(), obj.GetName())
			}
		}
		// ReplicaSets and Pods inherit the template's labels; without the
		// owner labels the member cache would not hold them and their events
		// could not be mirrored.
		tl := dep.Spec.Template.Labels
		if tl[hubv1.ManagedByLabel] != hubv1.ManagedByValue || tl[hubv1.OwnerNamespaceLabel] != namespace || tl[hubv1.OwnerNameLabel] != name {
			t.Fatalf("the pod template lacks the ownership labels: %v", tl)
		}
		if tl[hubv1.SelectorLabel] != name || dep.Spec.Selector.MatchLabels[hubv1.SelectorLabel] != name {
			t.Fatal("the pod template does not carry the selector label")
		}
		if d.Namespace.Labels[hubv1.ManagedByLabel] != hubv1.ManagedByValue {
			t.Fatal("the Namespace lacks the managed-by label")
		}
	})
}
