package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// Identities. Neither is in system:masters: API Priority and Fairness
// exempts that group from queuing, which would flatter both.
const (
	operatorUser = "bench-operator"
	baselineUser = "bench-baseline"
	// registryNamespace holds the registry Secrets of the running scenario
	// and the operator's leader-election Lease.
	registryNamespace = "bench-registry"
	metricsSA         = "bench-metrics"
)

// Tuning shared by the operator (as flags) and the baseline, so that they
// run with the same client limits and the same concurrency: the operator's
// defaults, unless BENCH_MEMBER_QPS, BENCH_MEMBER_BURST or
// BENCH_MAX_CONCURRENT override them to try another setting.
var (
	memberQPS     = envInt("BENCH_MEMBER_QPS", 50)
	memberBurst   = envInt("BENCH_MEMBER_BURST", 100)
	maxConcurrent = envInt("BENCH_MAX_CONCURRENT", 8)
	fanOut        = 16
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchEnv is the control planes every scenario runs on: scenarios use the
// first Members members and leave nothing of theirs behind.
type benchEnv struct {
	// Env holds the hub and the first batch of members.
	*controlplane.Env
	// members are every member, across batches.
	members []*controlplane.Cluster
	// batches are the further Envs started only for their members; their
	// own hubs stay idle.
	batches []*controlplane.Env
	// operatorHubKubeconfig is the operator identity's hub kubeconfig file.
	operatorHubKubeconfig string
	// metricsToken may GET the operator's /metrics.
	metricsToken string
	// insecure talks to the operator's self-signed metrics endpoint.
	insecure *http.Client
}

// batchSize is how many members start at once. Twenty API servers starting
// together on two shared cores miss their readiness deadline; batches of
// five, each with its own shared etcd, do not.
const batchSize = 5

// startEnv starts the hub and members; lean ones for the distribution
// scenarios. The hubs of the batches after the first only hold an etcd for
// their members and are always lean.
func startEnv(ctx context.Context, members int, lean bool) (*benchEnv, error) {
	e := &benchEnv{insecure: &http.Client{Transport: &http.Transport{
		// The operator serves a self-signed certificate, as it does in a
		// cluster without cert-manager.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // local benchmark endpoint
	}}}
	for first := 0; first < members; first += batchSize {
		opts := controlplane.Options{SharedEtcd: true, LeanHub: first > 0}
		for i := first; i < min(first+batchSize, members); i++ {
			opts.Members = append(opts.Members, controlplane.MemberOptions{Name: memberName(i), Lean: lean})
		}
		env, err := controlplane.Start(ctx, opts)
		if err != nil {
			return nil, errors.Join(err, e.stop(true))
		}
		if e.Env == nil {
			e.Env = env
		} else {
			e.batches = append(e.batches, env)
		}
		e.members = append(e.members, env.Members...)
	}
	if err := e.setUp(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("%w (control-plane logs in %s)", err, e.Dir), e.stop(true))
	}
	return e, nil
}

// stop stops every batch and removes their directories, unless keep is set
// or they did not stop cleanly.
func (e *benchEnv) stop(keep bool) error {
	var errs []error
	for _, env := range append(e.batches, e.Env) {
		if env == nil {
			continue
		}
		err := env.Stop()
		if err == nil && !keep {
			_ = os.RemoveAll(env.Dir)
		} else {
			logf("control-plane logs kept in %s", env.Dir)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func memberName(i int) string { return fmt.Sprintf("member-%02d", i) }

func (e *benchEnv) setUp(ctx context.Context) error {
	if err := e.Hub.InstallCRDs(ctx); err != nil {
		return err
	}
	if err := createNamespace(ctx, e.Hub, registryNamespace); err != nil {
		return err
	}
	if err := e.grantHub(ctx); err != nil {
		return err
	}
	for _, m := range e.members {
		if err := m.Grant(ctx, "", "bench-operator-member", operatorUser, operatorMemberRules); err != nil {
			return err
		}
		if err := m.Grant(ctx, "", "bench-baseline-member", baselineUser, baselineMemberRules); err != nil {
			return err
		}
	}
	kc, err := e.Hub.UserKubeconfig(operatorUser)
	if err != nil {
		return err
	}
	e.operatorHubKubeconfig = filepath.Join(e.Dir, "bench-operator.kubeconfig")
	if err := os.WriteFile(e.operatorHubKubeconfig, kc, 0o600); err != nil {
		return err
	}
	e.metricsToken, err = e.newMetricsToken(ctx)
	return err
}

// Verbs and verb sets of the rules below.
const (
	get    = "get"
	create = "create"
	patch  = "patch"
)

var (
	readVerbs   = []string{get, "list", "watch"}
	listVerbs   = readVerbs[1:]
	createVerbs = []string{create}
	// applyVerbs: a server-side apply that creates the object is
	// authorized as create too.
	applyVerbs  = []string{get, "list", "watch", create, patch}
	manageVerbs = append(slices.Clone(applyVerbs), "delete")
)

// operatorHubRules are the chart's ClusterRole (charts/hub-operator/templates/rbac.yaml).
var operatorHubRules = []rbacv1.PolicyRule{
	{APIGroups: []string{hubv1.GroupVersion.Group}, Resources: []string{myResources}, Verbs: append(slices.Clone(readVerbs), patch, "update")},
	{APIGroups: []string{hubv1.GroupVersion.Group}, Resources: []string{myResources + "/status"}, Verbs: []string{get, patch, "update"}},
	{APIGroups: []string{hubv1.GroupVersion.Group}, Resources: []string{myResources + "/finalizers"}, Verbs: []string{"update"}},
	{APIGroups: []string{appsv1.GroupName}, Resources: []string{"controllerrevisions"}, Verbs: append(slices.Clone(readVerbs), create, "update", "delete")},
	{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: append(slices.Clone(createVerbs), patch)},
	{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: createVerbs},
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: createVerbs},
}

// operatorRegistryRules are the chart's Roles in the registry namespace and
// for leader election (the registry namespace here too).
var operatorRegistryRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: append(slices.Clone(readVerbs), patch)},
	{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"}, Verbs: append(slices.Clone(readVerbs), create, "update", patch)},
}

// operatorMemberRules are what README.md says the member identity needs,
// plus create on Deployments and Services, which README.md leaves out.
var operatorMemberRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{get, create}},
	{APIGroups: []string{appsv1.GroupName}, Resources: []string{deployments}, Verbs: manageVerbs},
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: manageVerbs},
	{APIGroups: []string{appsv1.GroupName}, Resources: []string{"replicasets"}, Verbs: listVerbs},
	{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: listVerbs},
}

var baselineHubRules = []rbacv1.PolicyRule{
	{APIGroups: []string{hubv1.GroupVersion.Group}, Resources: []string{myResources}, Verbs: append(slices.Clone(readVerbs), patch)},
	{APIGroups: []string{hubv1.GroupVersion.Group}, Resources: []string{myResources + "/status"}, Verbs: []string{patch}},
}

var baselineMemberRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{get, create}},
	{APIGroups: []string{appsv1.GroupName}, Resources: []string{deployments}, Verbs: applyVerbs},
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: applyVerbs},
}

func (e *benchEnv) grantHub(ctx context.Context) error {
	if err := e.Hub.Grant(ctx, "", "bench-operator", operatorUser, operatorHubRules); err != nil {
		return err
	}
	if err := e.Hub.Grant(ctx, registryNamespace, "bench-operator", operatorUser, operatorRegistryRules); err != nil {
		return err
	}
	return e.Hub.Grant(ctx, "", "bench-baseline", baselineUser, baselineHubRules)
}

// newMetricsToken makes a ServiceAccount allowed to GET /metrics and returns a token of it.
func (e *benchEnv) newMetricsToken(ctx context.Context) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: registryNamespace, Name: metricsSA}}
	if err := e.Hub.Client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	user := "system:serviceaccount:" + registryNamespace + ":" + metricsSA
	rules := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{get}}}
	if err := e.Hub.Grant(ctx, "", "bench-metrics-reader", user, rules); err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(e.Hub.Config)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(registryNamespace).CreateToken(ctx, metricsSA,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

func createNamespace(ctx context.Context, c *controlplane.Cluster, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}
