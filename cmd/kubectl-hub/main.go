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
// operator, and labels). It never reads a Secret's data. It reaches the hub
// through kubectl's own connection flags (cli-runtime's ConfigFlags), and
// links nothing of the operator's multicluster runtime.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// defaultRequestTimeout bounds each request to the hub unless
// --request-timeout says otherwise, so that an unreachable hub fails the
// command instead of hanging it.
const defaultRequestTimeout = "30s"

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

Every command takes kubectl's connection flags (--kubeconfig, --context,
--cluster, --user, --as, --as-group, --request-timeout, ...); -n/--namespace
is for status only. Run "kubectl hub COMMAND --help" for the full list.
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
	registryNamespace string
	// kube are kubectl's connection flags, so the plugin reaches the hub
	// exactly as kubectl does with the same command line.
	kube *genericclioptions.ConfigFlags
}

// parseArgs reads a command line. Flags may come before or after the
// positional arguments, as with kubectl.
func parseArgs(args []string, stderr io.Writer) (*options, error) {
	if len(args) == 0 || slices.Contains([]string{"help", "-h", "-help", "--help"}, args[0]) {
		fmt.Fprint(stderr, usage)
		return nil, errUsage
	}
	o := &options{command: args[0], kube: genericclioptions.NewConfigFlags(true)}
	o.kube.Timeout = ptr.To(defaultRequestTimeout)
	fs := pflag.NewFlagSet("kubectl hub "+o.command, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "%s\nFlags of %s:\n%s", usage, o.command, fs.FlagUsages()) }
	o.kube.AddFlags(fs)
	switch o.command {
	case cmdStatus:
	case cmdClusters:
		fs.StringVar(&o.registryNamespace, "registry-namespace", hubv1.DefaultRegistryNamespace, "namespace of the registry Secrets")
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", o.command, usage)
		return nil, errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if !errors.Is(err, pflag.ErrHelp) { // help has printed the usage already
			fmt.Fprintf(stderr, "%v\n\n%s", err, usage)
		}
		return nil, errUsage
	}
	if rest := fs.Args(); len(rest) > 0 {
		o.args = rest
	}
	switch {
	case o.command == cmdStatus && len(o.args) != 1:
		fmt.Fprintf(stderr, "status takes exactly one MyResource name\n\n%s", usage)
		return nil, errUsage
	case o.command == cmdClusters && fs.Changed("namespace"):
		// Silently listing another namespace than the one asked for would
		// show an empty registry instead of the mistake.
		fmt.Fprintf(stderr, "clusters reads the registry namespace: use --registry-namespace, not -n\n\n%s", usage)
		return nil, errUsage
	}
	return o, nil
}

// hubConfig is the client configuration and namespace the connection flags
// select, resolved the way kubectl resolves them.
func hubConfig(o *options) (*rest.Config, string, error) {
	config, err := o.kube.ToRESTConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	namespace, _, err := o.kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("reading namespace from kubeconfig: %w", err)
	}
	return config, namespace, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	config, namespace, err := hubConfig(o)
	if err != nil {
		return err
	}
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
