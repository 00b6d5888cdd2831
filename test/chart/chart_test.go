// Package chart tests the Helm chart on a real hub API server: install,
// upgrade (values and CRD) and uninstall with the real helm binary, the RBAC
// it grants (sufficient for the real operator, and nothing more) and the
// restricted Pod Security Standard of its pod template.
package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

const (
	// releaseNS is where the chart is installed; it is also the registry
	// namespace (the chart's default: the release namespace).
	releaseNS = "hub-operator-system"
	release   = "hub"
	// fullname is the chart's name for the Deployment, ServiceAccount and RBAC.
	fullname = release + "-hub-operator"
	crdName  = "myresources.example.com"
)

func helmBin(t *testing.T) string { return controlplane.HelmBinary(t) }

func chartDir() string { return controlplane.ChartDir() }

// helm runs the pinned helm, against the hub of env unless it is nil.
func helm(t *testing.T, env *controlplane.Env, args ...string) {
	t.Helper()
	kubeconfig := ""
	if env != nil {
		kubeconfig = env.Hub.KubeconfigPath
	}
	controlplane.Helm(t, kubeconfig, args...)
}

// install installs the chart from dir into releaseNS. The image does not
// exist: the hub has no kubelet, so nothing runs; the objects are the test.
func install(t *testing.T, env *controlplane.Env, dir string, set ...string) {
	t.Helper()
	args := []string{"install", release, dir, "-n", releaseNS, "--create-namespace",
		"--set", "image.repository=example.invalid/hub-operator"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	helm(t, env, args...)
}

// waitCRDEstablished waits until the CRD serves, so MyResources can be created.
func waitCRDEstablished(t *testing.T, env *controlplane.Env) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(env.Hub.Client.Get(t.Context(), client.ObjectKey{Name: crdName}, crd)).To(Succeed())
		established := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		g.Expect(established).To(BeTrue(), "CRD %s is Established", crdName)
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return crd
}

func newMyResource(ns, name string, clusters ...string) *hubv1.MyResource {
	return &hubv1.MyResource{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: hubv1.MyResourceSpec{
			Placement: hubv1.Placement{Selection: hubv1.Selection{ClusterNames: clusters}},
			Deployment: hubv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}},
			},
		},
	}
}

func createNamespace(t *testing.T, env *controlplane.Env, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := env.Hub.Client.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// printerColumns lists the names of the CRD's printer columns of version v1.
func printerColumns(crd *apiextensionsv1.CustomResourceDefinition) []string {
	var names []string
	for _, v := range crd.Spec.Versions {
		if v.Name == "v1" {
			for _, c := range v.AdditionalPrinterColumns {
				names = append(names, c.Name)
			}
		}
	}
	return names
}

// copyChartWithExtraColumn copies the chart to a temporary directory and adds
// a printer column to its CRD template: a changed CRD that `helm upgrade`
// must apply (Helm never upgrades files under crds/, which is why the chart
// ships the CRD as a template).
func copyChartWithExtraColumn(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hub-operator")
	if err := os.CopyFS(dir, os.DirFS(chartDir())); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "templates", "crds", crdName+".yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	age := "    - jsonPath: .metadata.creationTimestamp\n      name: AGE\n      type: date\n"
	extra := age + "    - jsonPath: .spec.suspend\n      name: SUSPENDED\n      type: boolean\n"
	if !bytes.Contains(b, []byte(age)) {
		t.Fatalf("the CRD template has no AGE printer column to add a column after; has it changed shape?")
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(age), []byte(extra), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestHelmInstallUpgradeUninstall(t *testing.T) {
	helmBin(t)
	g := NewWithT(t)
	env := controlplane.StartForTest(t, controlplane.Options{})
	ctx := t.Context()
	c := env.Hub.Client

	install(t, env, chartDir())
	crd := waitCRDEstablished(t, env)
	g.Expect(crd.Annotations).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
	g.Expect(printerColumns(crd)).To(Equal([]string{"READY", "STATUS", "REVISION", "ROLLOUT", "AGE"}))
	// Every object of the default values exists (the ServiceMonitor,
	// dashboards and PrometheusRule are off by default).
	objects := []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: fullname}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: fullname}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: fullname + "-metrics"}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: fullname}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fullname}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fullname}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: fullname + "-registry"}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: fullname + "-registry"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: fullname + "-leader-election"}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNS, Name: fullname + "-leader-election"}},
	}
	for _, o := range objects {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(o), o)).To(Succeed(), "%T %s after install", o, o.GetName())
	}
	dep := objects[0].(*appsv1.Deployment)
	g.Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--fan-out=16"))

	// Upgrade with a changed value and a changed CRD.
	helm(t, env, "upgrade", release, copyChartWithExtraColumn(t), "-n", releaseNS,
		"--set", "image.repository=example.invalid/hub-operator", "--set", "operator.fanOut=4")
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(dep), dep)).To(Succeed())
	g.Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--fan-out=4"), "the value change reached the Deployment")
	g.Expect(c.Get(ctx, client.ObjectKey{Name: crdName}, crd)).To(Succeed())
	g.Expect(printerColumns(crd)).To(Equal([]string{"READY", "STATUS", "REVISION", "ROLLOUT", "AGE", "SUSPENDED"}), "the CRD on the server was upgraded")

	// A user's MyResource must outlive the release.
	createNamespace(t, env, "apps", nil)
	mr := newMyResource("apps", "web", "m1")
	g.Expect(c.Create(ctx, mr)).To(Succeed())

	helm(t, env, "uninstall", release, "-n", releaseNS)
	g.Expect(c.Get(ctx, client.ObjectKey{Name: crdName}, crd)).To(Succeed(), "the CRD is kept")
	g.Expect(crd.DeletionTimestamp).To(BeNil(), "the CRD is not being deleted")
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(mr), mr)).To(Succeed(), "the MyResource is kept")
	g.Expect(mr.DeletionTimestamp).To(BeNil())
	// Helm deletes with background propagation; with no garbage collector on
	// the hub the objects themselves still go at once, Eventually only covers
	// the API server's own pace.
	for _, o := range objects {
		g.Eventually(func() bool {
			return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(o), o))
		}).WithTimeout(30*time.Second).Should(BeTrue(), "%T %s is removed by uninstall", o, o.GetName())
	}
}

// serviceAccountToken asks the TokenRequest API for a token of the chart's
// ServiceAccount, as the kubelet would for the operator's pod.
func serviceAccountToken(t *testing.T, env *controlplane.Env) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Hub.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(releaseNS).CreateToken(t.Context(), fullname, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", releaseNS, fullname, err)
	}
	return tr.Status.Token
}

func TestChartRBACIsSufficient(t *testing.T) {
	helmBin(t)
	g := NewWithT(t)
	env := controlplane.StartForTest(t, controlplane.Options{Members: []controlplane.MemberOptions{
		{Name: "m1", FakeNodes: true},
		{Name: "m2", FakeNodes: true},
	}})
	ctx := t.Context()
	install(t, env, chartDir())
	waitCRDEstablished(t, env)

	kubeconfig, err := env.Hub.TokenKubeconfig(serviceAccountToken(t, env))
	g.Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(t.TempDir(), "sa.kubeconfig")
	g.Expect(os.WriteFile(path, kubeconfig, 0o600)).To(Succeed())
	for _, m := range env.Members {
		g.Expect(env.Register(ctx, m, releaseNS, nil)).To(Succeed())
	}
	// The flags the chart's Deployment passes that matter for permissions:
	// leader election in the release namespace, the registry there too.
	op, err := env.StartOperator(controlplane.OperatorOptions{
		Kubeconfig: path, RegistryNamespace: releaseNS,
		Args: []string{"--leader-elect=true", "--leader-election-namespace=" + releaseNS},
	})
	g.Expect(err).NotTo(HaveOccurred())

	createNamespace(t, env, "apps", nil)
	mr := newMyResource("apps", "web", "m1", "m2")
	g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := &hubv1.MyResource{}
		g.Expect(env.Hub.Client.Get(ctx, client.ObjectKeyFromObject(mr), got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		c := meta.FindStatusCondition(got.Status.Conditions, hubv1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "Ready: %s %s; clusters: %+v", c.Reason, c.Message, got.Status.Clusters)
		g.Expect(got.Status.ReadyClusters).To(BeEquivalentTo(2))
	}).WithTimeout(120 * time.Second).WithPolling(time.Second).Should(Succeed())

	// The leader Lease was taken with the chart's Role.
	leases := &coordinationv1.LeaseList{}
	g.Expect(env.Hub.Client.List(ctx, leases, client.InNamespace(releaseNS))).To(Succeed())
	g.Expect(leases.Items).NotTo(BeEmpty(), "a leader-election Lease in %s", releaseNS)

	logs, err := op.Logs()
	g.Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			t.Errorf("the operator was refused something the chart should grant: %s", line)
		}
	}
}

// saAccess is a SubjectAccessReview of the chart's ServiceAccount as the authorizer sees it, with the
// groups every ServiceAccount token carries (a binding to one of those would
// grant the operator too).
func saAccess(ns, verb, group, resource, sub, name string) *authorizationv1.SubjectAccessReview {
	return &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + releaseNS + ":" + fullname,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNS, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub, Name: name,
		},
	}}
}

func TestChartRBACIsLeast(t *testing.T) {
	helmBin(t)
	env := controlplane.StartForTest(t, controlplane.Options{})
	install(t, env, chartDir())

	type check struct {
		ns, verb, group, resource, sub string
	}
	// What the operator needs: asserted too, so that a denial below cannot
	// come from a chart that grants nothing at all.
	allowed := []check{
		{releaseNS, "list", "", "secrets", ""},
		{releaseNS, "watch", "", "secrets", ""},
		{releaseNS, "get", "", "secrets", ""},
		{releaseNS, "patch", "", "secrets", ""},
		{"", "list", "example.com", "myresources", ""},
		{"apps", "update", "example.com", "myresources", "finalizers"},
		{"apps", "patch", "example.com", "myresources", "status"},
		{"apps", "create", "", "events", ""},
		{"apps", "create", "events.k8s.io", "events", ""},
		{"apps", "create", "apps", "controllerrevisions", ""},
		{"apps", "delete", "apps", "controllerrevisions", ""},
		{releaseNS, "update", "coordination.k8s.io", "leases", ""},
		{"", "create", "authentication.k8s.io", "tokenreviews", ""},
		{"", "create", "authorization.k8s.io", "subjectaccessreviews", ""},
	}
	denied := []check{
		// Secrets outside the registry namespace, and cluster-wide.
		{"default", "get", "", "secrets", ""},
		{"default", "list", "", "secrets", ""},
		{"kube-system", "get", "", "secrets", ""},
		{"kube-system", "list", "", "secrets", ""},
		{"", "list", "", "secrets", ""},
		{"", "watch", "", "secrets", ""},
		// Registry Secrets are read and annotated, never created or removed.
		{releaseNS, "create", "", "secrets", ""},
		{releaseNS, "delete", "", "secrets", ""},
		// Revisions are written one at a time, never patched or collected.
		{"apps", "patch", "apps", "controllerrevisions", ""},
		{"apps", "deletecollection", "apps", "controllerrevisions", ""},
		// No workloads on the hub.
		{"default", "create", "apps", "deployments", ""},
		{"default", "update", "apps", "deployments", ""},
		{releaseNS, "create", "apps", "deployments", ""},
		{releaseNS, "update", "apps", "deployments", ""},
		{releaseNS, "patch", "apps", "deployments", ""},
		{releaseNS, "create", "", "pods", ""},
		{releaseNS, "create", "", "serviceaccounts", "token"},
		// Leases only in the release namespace.
		{"kube-system", "update", "coordination.k8s.io", "leases", ""},
		// No way to grant itself more.
		{releaseNS, "create", "rbac.authorization.k8s.io", "roles", ""},
		{releaseNS, "update", "rbac.authorization.k8s.io", "roles", ""},
		{releaseNS, "escalate", "rbac.authorization.k8s.io", "roles", ""},
		{releaseNS, "bind", "rbac.authorization.k8s.io", "roles", ""},
		{releaseNS, "create", "rbac.authorization.k8s.io", "rolebindings", ""},
		{releaseNS, "update", "rbac.authorization.k8s.io", "rolebindings", ""},
		{"", "create", "rbac.authorization.k8s.io", "clusterroles", ""},
		{"", "update", "rbac.authorization.k8s.io", "clusterroles", ""},
		{"", "escalate", "rbac.authorization.k8s.io", "clusterroles", ""},
		{"", "bind", "rbac.authorization.k8s.io", "clusterroles", ""},
		{"", "create", "rbac.authorization.k8s.io", "clusterrolebindings", ""},
		{"", "update", "rbac.authorization.k8s.io", "clusterrolebindings", ""},
		{"", "impersonate", "", "users", ""},
		{"", "impersonate", "", "groups", ""},
		{"", "impersonate", "", "serviceaccounts", ""},
		{"", "impersonate", "authentication.k8s.io", "uids", ""},
		// Nor the CRDs: the chart (the installing user) manages them.
		{"", "update", "apiextensions.k8s.io", "customresourcedefinitions", ""},
		// Nor deleting users' MyResources.
		{"apps", "delete", "example.com", "myresources", ""},
	}
	review := func(c check) *authorizationv1.SubjectAccessReview {
		t.Helper()
		sar := saAccess(c.ns, c.verb, c.group, c.resource, c.sub, "")
		if err := env.Hub.Client.Create(t.Context(), sar); err != nil {
			t.Fatal(err)
		}
		return sar
	}
	for _, c := range allowed {
		if sar := review(c); !sar.Status.Allowed {
			t.Errorf("the chart's ServiceAccount cannot %s %s.%s/%s in %q (needed by the operator): %s", c.verb, c.resource, c.group, c.sub, c.ns, sar.Status.Reason)
		}
	}
	for _, c := range denied {
		if sar := review(c); sar.Status.Allowed {
			t.Errorf("the chart's ServiceAccount can %s %s.%s/%s in %q: %s", c.verb, c.resource, c.group, c.sub, c.ns, sar.Status.Reason)
		}
	}
}

// renderedDeployment is the chart's Deployment as `helm template` renders it
// with default values.
func renderedDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	for _, m := range controlplane.RenderChart(t, release, releaseNS) {
		if m.Kind == "Deployment" {
			d := &appsv1.Deployment{}
			if err := yaml.UnmarshalStrict(m.YAML, d); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatal("helm template rendered no Deployment")
	return nil
}

func TestChartPodSecurityRestricted(t *testing.T) {
	helmBin(t)
	g := NewWithT(t)
	dep := renderedDeployment(t)
	env := controlplane.StartForTest(t, controlplane.Options{})
	ctx := t.Context()
	const ns = "restricted"
	createNamespace(t, env, ns, map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	})
	// The ServiceAccount admission plugin refuses a Pod whose ServiceAccount
	// does not exist; the Pod keeps the rendered spec unchanged.
	g.Expect(env.Hub.Client.Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: dep.Spec.Template.Spec.ServiceAccountName},
	})).To(Succeed())

	pod := func(name string, weaken func(*corev1.PodSpec)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: dep.Spec.Template.Labels},
			Spec:       *dep.Spec.Template.Spec.DeepCopy(),
		}
		if weaken != nil {
			weaken(&p.Spec)
		}
		return p
	}
	g.Expect(env.Hub.Client.Create(ctx, pod("as-rendered", nil))).To(Succeed(),
		"a Pod of the chart's template is admitted under the restricted standard")

	weakened := map[string]func(*corev1.PodSpec){
		"run-as-root": func(s *corev1.PodSpec) {
			s.SecurityContext.RunAsNonRoot = ptr.To(false)
			s.SecurityContext.RunAsUser = ptr.To[int64](0)
		},
		"privileged": func(s *corev1.PodSpec) {
			// Validation refuses privileged with allowPrivilegeEscalation
			// false before admission sees it, so that is loosened too.
			s.Containers[0].SecurityContext.Privileged = ptr.To(true)
			s.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
		},
		"privilege-escalation":     func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true) },
		"no-seccomp":               func(s *corev1.PodSpec) { s.SecurityContext.SeccompProfile = nil },
		"capabilities-not-dropped": func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Capabilities = nil },
	}
	for name, weaken := range weakened {
		err := env.Hub.Client.Create(ctx, pod(name, weaken))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: a weakened Pod is refused, got %v", name, err)
		g.Expect(err.Error()).To(ContainSubstring("violates PodSecurity \"restricted:latest\""), name)
	}
}
