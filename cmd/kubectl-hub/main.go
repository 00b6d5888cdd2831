// Command kubectl-hub is a kubectl plugin that shows what hub-operator knows,
// from the hub alone: where a MyResource runs and how it is doing in each
// member cluster, and the health of every registered member cluster.
//
//	go install example.com/hub-operator/cmd/kubectl-hub@latest
//	kubectl hub status [-n NAMESPACE] NAME
//	kubectl hub clusters [--registry-namespace NAMESPACE] [CLUSTER...]
//
// It reads only the hub: the MyResource's status and events, and the
// metadata of the registry Secrets (their health annotations, written by the
// operator, and labels). It never reads a Secret's data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/clusterregistry"
)

// requestTimeout bounds each request to the hub, so that an unreachable hub
// fails the command instead of hanging it.
const requestTimeout = 30 * time.Second

// The plugin's commands.
const (
	cmdStatus   = "status"
	cmdClusters = "clusters"
)

// errUsage is a command line the plugin cannot run; the usage was printed.
var errUsage = errors.New("invalid usage")

const usage = `kubectl hub shows hub-operator's view of MyResources and member clusters.

Usage:
  kubectl hub status [-n NAMESPACE] NAME
      Per-cluster status of a MyResource (Applied, Available, ready/desired
      replicas, the message that explains a failure), its Ready and Degraded
      conditions, and its recent events.
  kubectl hub clusters [--registry-namespace NAMESPACE] [CLUSTER...]
      Registered member clusters with their health (from the annotations the
      operator writes on the registry Secrets) and their labels.

Flags (every command):
  --kubeconfig PATH   kubeconfig of the hub (default: KUBECONFIG, then ~/.kube/config)
  --context NAME      kubeconfig context to use
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}

// options are the command line of one invocation.
type options struct {
	command           string
	args              []string
	kubeconfig        string
	context           string
	namespace         string
	registryNamespace string
}

// parseArgs reads a command line. Flags may come before or after the
// positional arguments, as with kubectl.
func parseArgs(args []string, stderr io.Writer) (*options, error) {
	if len(args) == 0 || slices.Contains([]string{"help", "-h", "-help", "--help"}, args[0]) {
		fmt.Fprint(stderr, usage)
		return nil, errUsage
	}
	o := &options{command: args[0]}
	fs := flag.NewFlagSet("kubectl hub "+o.command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the hub")
	fs.StringVar(&o.context, "context", "", "kubeconfig context to use")
	switch o.command {
	case cmdStatus:
		fs.StringVar(&o.namespace, "namespace", "", "namespace of the MyResource (default: the context's)")
		fs.StringVar(&o.namespace, "n", "", "shorthand for --namespace")
	case cmdClusters:
		fs.StringVar(&o.registryNamespace, "registry-namespace", clusterregistry.DefaultNamespace, "namespace of the registry Secrets")
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", o.command, usage)
		return nil, errUsage
	}
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, errUsage
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		o.args = append(o.args, rest[0])
		rest = rest[1:]
	}
	if o.command == cmdStatus && len(o.args) != 1 {
		fmt.Fprintf(stderr, "status takes exactly one MyResource name\n\n%s", usage)
		return nil, errUsage
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.context}
	overrides.Context.Namespace = o.namespace
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	config, err := loader.ClientConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	config.Timeout = requestTimeout
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	if err := hubv1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	c, err := client.New(config, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating hub client: %w", err)
	}

	switch o.command {
	case cmdStatus:
		namespace, _, err := loader.Namespace()
		if err != nil {
			return fmt.Errorf("reading namespace from kubeconfig: %w", err)
		}
		return status(ctx, c, stdout, namespace, o.args[0])
	default:
		return clusters(ctx, c, stdout, o.registryNamespace, o.args)
	}
}

// status prints the status and recent events of one MyResource.
func status(ctx context.Context, c client.Client, w io.Writer, namespace, name string) error {
	mr := &hubv1.MyResource{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, mr); err != nil {
		return fmt.Errorf("getting MyResource %s/%s: %w", namespace, name, err)
	}
	// events.k8s.io/v1 and core/v1 Events are two views of the same objects,
	// so this one list holds events written through either API.
	var events eventsv1.EventList
	if err := c.List(ctx, &events, client.InNamespace(namespace), client.MatchingFieldsSelector{
		Selector: fields.SelectorFromSet(fields.Set{
			"regarding.kind": "MyResource",
			"regarding.name": mr.Name,
			"regarding.uid":  string(mr.UID),
		}),
	}); err != nil {
		return fmt.Errorf("listing events of MyResource %s/%s: %w", namespace, name, err)
	}
	return printStatus(w, mr, events.Items, time.Now())
}

// clusters prints the registered member clusters, or only those named.
func clusters(ctx context.Context, c client.Client, w io.Writer, namespace string, names []string) error {
	// Metadata only: the health and labels are all the plugin shows, and a
	// kubeconfig never needs to leave the hub for it.
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := c.List(ctx, list, client.InNamespace(namespace),
		client.MatchingLabels{hubv1.MemberClusterLabel: "true"}); err != nil {
		return fmt.Errorf("listing registry secrets in namespace %s: %w", namespace, err)
	}
	secrets := list.Items
	var missing []string
	if len(names) > 0 {
		secrets = slices.DeleteFunc(secrets, func(s metav1.PartialObjectMetadata) bool { return !slices.Contains(names, s.Name) })
		for _, n := range names {
			if !slices.ContainsFunc(secrets, func(s metav1.PartialObjectMetadata) bool { return s.Name == n }) {
				missing = append(missing, n)
			}
		}
	}
	if err := printClusters(w, secrets, time.Now()); err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("not registered in namespace %s: %s", namespace, strings.Join(missing, ", "))
	}
	return nil
}
