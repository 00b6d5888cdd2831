// Command kubectl-hub is a kubectl plugin that shows what hub-operator knows,
// from the hub alone: where a MyResource runs and how it is doing in each
// member cluster, the health of every registered member cluster, and where
// a staged rollout stands; it also steers rollouts.
//
//	go install example.com/hub-operator/cmd/kubectl-hub@latest
//	kubectl hub status [-n NAMESPACE] NAME
//	kubectl hub clusters [--registry-namespace NAMESPACE] [CLUSTER...]
//	kubectl hub rollout status NAME [--watch] [--timeout D]
//	kubectl hub rollout history NAME [--revision N]
//	kubectl hub rollout pause|resume NAME
//	kubectl hub rollout approve NAME [--stage S]
//	kubectl hub rollout undo NAME [--to-revision N]
//
// It reads only the hub: the MyResource's status and events, its
// ControllerRevisions (the revisions of a rollout), and the metadata of the
// registry Secrets (their health annotations, written by the operator, and
// labels, which rollout stages select on). It never reads a Secret's data.
// It writes only the MyResource: spec.rollout.paused (pause, resume), the
// example.com/rollout-approved annotation (approve), and spec.deployment,
// spec.service and spec.overrides (undo), each as a merge patch locked on
// the resourceVersion it read. It reaches the hub through kubectl's own
// connection flags (cli-runtime's ConfigFlags), and links nothing of the
// operator's multicluster runtime: hub/rollout, which it uses to group
// clusters into stages exactly as the operator does, imports only api/v1
// and apimachinery.
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
	cmdRollout  = "rollout"
)

// defaultPollPeriod is how often rollout status --watch reads the MyResource.
const defaultPollPeriod = 2 * time.Second

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
  kubectl hub rollout status [-n NAMESPACE] NAME [--watch] [--timeout D]
      Where the rollout of the newest revision stands (spec.rollout): its
      phase, stable revision and message, then stage by stage each cluster's
      revision and state. Exits 1 when the rollout is Halted or RolledBack.
      With --watch, prints every change until it is Complete (exit 0),
      Halted or RolledBack (exit 1), or --timeout passes (exit 1).
      --registry-namespace is where the cluster labels are read.
  kubectl hub rollout history [-n NAMESPACE] NAME [--revision N]
      The revisions kept on the hub, with how many clusters run each; with
      --revision, that revision's deployment, service and overrides as YAML.
  kubectl hub rollout pause|resume [-n NAMESPACE] NAME
      Sets spec.rollout.paused: no further cluster starts a new revision.
  kubectl hub rollout approve [-n NAMESPACE] NAME [--stage STAGE]
      Lets the stage that waits for approval (or STAGE) start for the
      newest revision.
  kubectl hub rollout undo [-n NAMESPACE] NAME [--to-revision N]
      Writes revision N (default: the one before the newest) back into the
      spec, which makes it the newest revision again.

Every command takes kubectl's connection flags (--kubeconfig, --context,
--cluster, --user, --as, --as-group, --request-timeout, ...); -n/--namespace
is for status and rollout only. Run "kubectl hub COMMAND --help" for the
full list.
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
	subcommand        string // of rollout
	args              []string
	registryNamespace string
	rollout           rolloutOptions
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
	o.rollout.pollPeriod = defaultPollPeriod
	args = args[1:]
	name := o.command
	if o.command == cmdRollout {
		if len(args) == 0 || !slices.Contains(rolloutSubcommands, args[0]) {
			fmt.Fprintf(stderr, "rollout takes a subcommand: %s\n\n%s", strings.Join(rolloutSubcommands, ", "), usage)
			return nil, errUsage
		}
		o.subcommand, args = args[0], args[1:]
		name += " " + o.subcommand
	}
	fs := pflag.NewFlagSet("kubectl hub "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "%s\nFlags of %s:\n%s", usage, name, fs.FlagUsages()) }
	o.kube.AddFlags(fs)
	registryFlag := func() {
		fs.StringVar(&o.registryNamespace, "registry-namespace", hubv1.DefaultRegistryNamespace, "namespace of the registry Secrets")
	}
	switch o.command {
	case cmdStatus:
	case cmdClusters:
		registryFlag()
	case cmdRollout:
		switch o.subcommand {
		case rolloutStatus:
			registryFlag()
			fs.BoolVarP(&o.rollout.watch, "watch", "w", false, "print every change until the rollout is Complete, Halted or RolledBack")
			fs.DurationVar(&o.rollout.timeout, "timeout", 0, "with --watch, how long to wait before giving up (0: forever)")
		case rolloutHistory:
			fs.Int64Var(&o.rollout.revision, "revision", 0, "print this revision's data as YAML")
		case rolloutApprove:
			fs.StringVar(&o.rollout.stage, "stage", "", "the stage to approve (default: the one waiting for approval)")
		case rolloutUndo:
			fs.Int64Var(&o.rollout.revision, "to-revision", 0, "the revision to go back to (default: the one before the newest)")
		}
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", o.command, usage)
		return nil, errUsage
	}
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, pflag.ErrHelp) { // help has printed the usage already
			fmt.Fprintf(stderr, "%v\n\n%s", err, usage)
		}
		return nil, errUsage
	}
	if rest := fs.Args(); len(rest) > 0 {
		o.args = rest
	}
	switch {
	case (o.command == cmdStatus || o.command == cmdRollout) && len(o.args) != 1:
		fmt.Fprintf(stderr, "%s takes exactly one MyResource name\n\n%s", name, usage)
		return nil, errUsage
	case o.rollout.revision < 0:
		fmt.Fprintf(stderr, "a revision is a positive number\n\n%s", usage)
		return nil, errUsage
	case o.rollout.timeout < 0:
		fmt.Fprintf(stderr, "--timeout cannot be negative\n\n%s", usage)
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
	case cmdRollout:
		return runRollout(ctx, c, stdout, o, namespace)
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
	secrets, err := registrySecrets(ctx, c, namespace)
	if err != nil {
		return err
	}
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

// registrySecrets lists the metadata of the registry Secrets in namespace.
func registrySecrets(ctx context.Context, c client.Client, namespace string) ([]metav1.PartialObjectMetadata, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := c.List(ctx, list, client.InNamespace(namespace),
		client.MatchingLabels{hubv1.MemberClusterLabel: "true"}); err != nil {
		return nil, fmt.Errorf("listing registry secrets in namespace %s: %w", namespace, err)
	}
	return list.Items, nil
}
