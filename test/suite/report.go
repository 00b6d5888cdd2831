package suite

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"example.com/hub-operator/test/controlplane"
)

// MemberReport says what each member holds for the MyResource namespace/name:
// its Deployment's status, the Pods (node, phase, Ready and since when,
// deletion), the fake Nodes (Ready, Lease renewal) and the events of the
// namespace. A wait on a MyResource that times out prints it, so that a
// failure says whether the operator or the member's machinery was behind.
func MemberReport(ctx context.Context, env *controlplane.Env, namespace, name string) string {
	if env == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "what the members hold at %s:\n", time.Now().Format("15:04:05.000"))
	for _, m := range env.Members {
		fmt.Fprintf(&b, "  member %s:\n", m.Name)
		reportDeployment(ctx, &b, m.Client, namespace, name)
		reportPods(ctx, &b, m.Client, namespace, name)
		reportNodes(ctx, &b, m.Client)
		reportEvents(ctx, &b, m.Client, namespace)
	}
	return b.String()
}

func reportDeployment(ctx context.Context, b *strings.Builder, c client.Client, namespace, name string) {
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &d); err != nil {
		fmt.Fprintf(b, "    Deployment: %v\n", err)
		return
	}
	s := d.Status
	fmt.Fprintf(b, "    Deployment gen %d observed %d: replicas %d updated %d ready %d available %d unavailable %d\n",
		d.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.UnavailableReplicas)
	for _, cond := range s.Conditions {
		fmt.Fprintf(b, "      %s=%s %s since %s: %s\n", cond.Type, cond.Status, cond.Reason,
			cond.LastTransitionTime.Format("15:04:05"), cond.Message)
	}
}

func reportPods(ctx context.Context, b *strings.Builder, c client.Client, namespace, name string) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(namespace)); err != nil {
		fmt.Fprintf(b, "    Pods: %v\n", err)
		return
	}
	for _, p := range pods.Items {
		if !strings.HasPrefix(p.Name, name+"-") {
			continue
		}
		ready := "Ready absent"
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				ready = fmt.Sprintf("Ready=%s since %s %s", cond.Status, cond.LastTransitionTime.Format("15:04:05"), cond.Reason)
			}
		}
		deleting := ""
		if p.DeletionTimestamp != nil {
			deleting = " deleting since " + p.DeletionTimestamp.Format("15:04:05")
		}
		fmt.Fprintf(b, "    Pod %s created %s node %q phase %s %s%s\n", p.Name,
			p.CreationTimestamp.Format("15:04:05"), p.Spec.NodeName, p.Status.Phase, ready, deleting)
	}
}

func reportNodes(ctx context.Context, b *strings.Builder, c client.Client) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		fmt.Fprintf(b, "    Nodes: %v\n", err)
		return
	}
	var leases coordinationv1.LeaseList
	_ = c.List(ctx, &leases, client.InNamespace(corev1.NamespaceNodeLease))
	renewed := map[string]string{}
	for _, l := range leases.Items {
		if l.Spec.RenewTime != nil {
			renewed[l.Name] = l.Spec.RenewTime.Format("15:04:05")
		}
	}
	for _, n := range nodes.Items {
		ready := "Ready absent"
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				ready = fmt.Sprintf("Ready=%s since %s", cond.Status, cond.LastTransitionTime.Format("15:04:05"))
			}
		}
		var taints []string
		for _, t := range n.Spec.Taints {
			taints = append(taints, t.Key+":"+string(t.Effect))
		}
		fmt.Fprintf(b, "    Node %s %s lease renewed %s taints %v\n", n.Name, ready, renewed[n.Name], taints)
	}
}

func reportEvents(ctx context.Context, b *strings.Builder, c client.Client, namespace string) {
	var events corev1.EventList
	if err := c.List(ctx, &events, client.InNamespace(namespace)); err != nil {
		fmt.Fprintf(b, "    Events: %v\n", err)
		return
	}
	sort.Slice(events.Items, func(i, j int) bool {
		return events.Items[i].LastTimestamp.Before(&events.Items[j].LastTimestamp)
	})
	for _, e := range events.Items {
		fmt.Fprintf(b, "    Event %s %s %s/%s x%d %s: %s\n", e.LastTimestamp.Format("15:04:05"), e.Type,
			e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Count, e.Reason, e.Message)
	}
}
