package clusterregistry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	hubv1 "example.com/hub-operator/api/v1"
)

// memberClusterLabelValue is the value of hubv1.MemberClusterLabel on a
// registry Secret.
const memberClusterLabelValue = "true"

// eventActionValidate is the events.k8s.io action of the invalid-kubeconfig event.
const eventActionValidate = "ValidateKubeconfig"

// Reconcile brings the registry in line with one registry Secret. It never
// talks to the member: it validates the kubeconfig and, when it changed,
// (re)starts the cluster's connect loop, so a member that does not answer
// cannot hold up the registry.
//
// It then records the cluster's health on the Secret's annotations when it
// changed (writeHealth).
//
// On the hub it needs get, list, watch and patch on Secrets in the registry
// namespace only (with HubCacheByObject), and create and patch on
// events.k8s.io Events there.
func (p *Provider) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if p.client == nil {
		return ctrl.Result{}, errors.New("reconciling registry secret: provider is not set up with a manager")
	}
	secret := &corev1.Secret{}
	if err := p.client.Get(ctx, req.NamespacedName, secret); err != nil {
		if apierrors.IsNotFound(err) {
			p.remove(ctx, req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting registry secret %s: %w", req.NamespacedName, err)
	}
	err := p.reconcileSecret(ctx, secret)
	if herr := p.writeHealth(ctx, secret); herr != nil {
		// A rejected kubeconfig's error is already logged and recorded as an
		// event; retrying the health write is what matters here.
		return ctrl.Result{}, herr
	}
	return ctrl.Result{}, err
}

// reconcileSecret registers, updates or removes the cluster of secret. Its
// only error is a reconcile.TerminalError for a rejected kubeconfig: retrying
// cannot help until the Secret changes, which triggers a new reconcile anyway.
func (p *Provider) reconcileSecret(ctx context.Context, secret *corev1.Secret) error {
	name := secret.Name
	log := ctrl.LoggerFrom(ctx).WithValues("cluster", name)
	if !isRegistrySecret(secret, p.opts.Namespace) || !secret.DeletionTimestamp.IsZero() {
		p.remove(ctx, name)
		return nil
	}

	data := secret.Data[hubv1.KubeconfigKey]
	hash := hashKubeconfig(data)
	clusterLabels := maps.Clone(secret.Labels)
	if p.relabel(name, hash, clusterLabels) {
		return nil
	}

	config, verr := ValidateKubeconfig(data, p.validation)
	if verr != nil {
		msg := safeMessage(verr)
		if !p.register(ctx, name, hash, clusterLabels, nil, msg) {
			return nil
		}
		log.Info("Rejected kubeconfig", "reason", hubv1.ReasonInvalidKubeconfig, "message", msg)
		p.recorder.Eventf(secret, nil, corev1.EventTypeWarning, hubv1.ReasonInvalidKubeconfig, eventActionValidate, "%s", msg)
		return reconcile.TerminalError(fmt.Errorf("registry secret %s: %w", klog.KObj(secret), verr))
	}
	log.Info("Registering cluster")
	p.register(ctx, name, hash, clusterLabels, config, "")
	return nil
}

// registryPredicate lets through registry Secrets, and updates in which a
// Secret stops being one (label removed), so that the cluster is removed even
// when the hub cache is not restricted by HubCacheByObject.
func (p *Provider) registryPredicate() predicate.Predicate {
	is := func(o client.Object) bool {
		s, ok := o.(*corev1.Secret)
		return ok && isRegistrySecret(s, p.opts.Namespace)
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return is(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return is(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return is(e.ObjectOld) || is(e.ObjectNew) },
		GenericFunc: func(e event.GenericEvent) bool { return is(e.Object) },
	}
}

func isRegistrySecret(s *corev1.Secret, namespace string) bool {
	return s.Namespace == namespace && s.Labels[hubv1.MemberClusterLabel] == memberClusterLabelValue
}

func hashKubeconfig(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// relabel updates the labels of a cluster whose kubeconfig is unchanged and
// reports whether it did so (false: unknown cluster or new kubeconfig).
func (p *Provider) relabel(name, hash string, clusterLabels map[string]string) bool {
	p.mu.Lock()
	e, ok := p.entries[name]
	if !ok || e.hash != hash {
		p.mu.Unlock()
		return false
	}
	changed := !maps.Equal(e.info.Labels, clusterLabels)
	e.info.Labels = clusterLabels
	p.mu.Unlock()
	if changed {
		p.notify(name)
	}
	return true
}

// register installs a new registration for name, replacing (and tearing down)
// any previous one, and reports whether it did: a registration of the same
// kubeconfig (hash) is kept, only relabelled. config nil means the kubeconfig
// was rejected with msg.
func (p *Provider) register(ctx context.Context, name, hash string, clusterLabels map[string]string, config *rest.Config, msg string) bool {
	e := &entry{hash: hash, config: config}
	if config == nil {
		e.info = ClusterInfo{Name: name, Labels: clusterLabels, State: StateInvalid, Reason: hubv1.ReasonInvalidKubeconfig, Message: msg}
	} else {
		e.info = ClusterInfo{Name: name, Labels: clusterLabels, State: StateConnecting, Reason: hubv1.ReasonPending, Message: "connecting to the cluster"}
	}

	p.mu.Lock()
	old, exists := p.entries[name]
	if exists && old.hash == hash {
		// The startup pass and a reconcile raced on the same Secret.
		p.mu.Unlock()
		p.relabel(name, hash, clusterLabels)
		return false
	}
	// New credentials for a Ready cluster (a rotation): the current
	// connection keeps serving, and the cluster stays Ready, until the new
	// one has synced, so that MyResources placed on it do not flap.
	handOver := exists && config != nil && old.cancel != nil && old.cluster != nil && old.info.State == StateReady
	var retire context.CancelFunc
	if handOver {
		e.info.State, e.info.Reason, e.info.Message = old.info.State, old.info.Reason, old.info.Message
		e.cluster, retire = old.cluster, old.cancel
	}
	p.entries[name] = e
	if config != nil && p.ctx != nil {
		p.launchLocked(name, e, retire)
	}
	p.mu.Unlock()

	switch {
	case handOver:
		ctrl.LoggerFrom(ctx).Info("Connecting cluster with its new kubeconfig, serving on the current connection meanwhile", "cluster", name)
	case exists && old.cancel != nil:
		ctrl.LoggerFrom(ctx).Info("Disconnecting cluster for its new kubeconfig", "cluster", name)
		old.cancel()
	}
	p.notify(name)
	return true
}

// remove forgets a cluster and stops its connect loop, which disengages it.
// Nothing is deleted anywhere: what happens to the member's objects is the
// hub's decision.
func (p *Provider) remove(ctx context.Context, name string) {
	p.mu.Lock()
	e, ok := p.entries[name]
	delete(p.entries, name)
	p.mu.Unlock()
	if !ok {
		return
	}
	ctrl.LoggerFrom(ctx).Info("Removing cluster from the registry", "cluster", name)
	if e.cancel != nil {
		e.cancel()
	}
	p.notify(name)
}
