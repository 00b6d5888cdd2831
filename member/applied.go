package member

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// An apply is skipped by intent, not by diff: the Applier remembers, per
// member object, the hash of the apply configuration it last sent and a
// fingerprint of the object that apply left, and sends the same intent again
// only when the member object is no longer that version. This is
// cluster-api's SSA request cache (internal/util/ssa), keyed by object
// rather than by request so that it holds one record per object instead of
// one per resourceVersion ever seen, and needs no expiry: an expired record
// would cost a write at rest.
//
// Nothing here compares field values, so whatever the member adds to what
// was applied (defaults, a sidecar and a label from a mutating webhook, a
// quantity in canonical form) is never mistaken for drift; and every change
// to the object after our apply changes its fingerprint, so drift is never
// missed. What it costs: a process that starts with no records (a restart,
// a new leader) applies each object once, a no-op for the member.

// maxApplied bounds the records. Objects that are deleted, or left behind in
// a cluster that left the registry, are forgotten explicitly; this bounds
// what cannot be (objects orphaned by deletionPolicy Orphan) at a few tens
// of MiB. Dropping a record costs one no-op apply, never a missed drift.
const maxApplied = 1 << 17

// digest is a truncated SHA-256: collisions are out of reach, and it keeps a
// record small for operators with many thousands of member objects.
type digest [16]byte

func digestOf(b []byte) digest {
	sum := sha256.Sum256(b)
	return digest(sum[:16])
}

type appliedKey struct{ cluster, kind, namespace, name string }

// appliedRecord is what the last successful apply of an object left.
type appliedRecord struct {
	// intent is the hash of the apply configuration sent.
	intent digest
	// after is the fingerprint of the object the member returned.
	after digest
	// beforeRV is the resourceVersion of the very object the apply was
	// judged against ("" when there was none). Seeing that version again
	// means only that the cache has not caught up with our write yet; its
	// watch event brings the object round again. A fingerprint would not
	// do: one edit of a label of ours, reverted, then made again, comes back
	// to the fingerprint it had before the revert (labels do not move the
	// generation) and would be skipped as stale, leaving the drift in place.
	beforeRV string
}

// appliedCache holds the records of one Applier. The zero value is ready.
type appliedCache struct {
	mu      sync.Mutex
	records map[appliedKey]appliedRecord
}

// current reports whether the object need not be applied: the last apply
// sent this intent and the member object (fingerprint fp, resourceVersion
// rv) is the version it left, or the very version it was applied over.
func (c *appliedCache) current(k appliedKey, intent, fp digest, rv string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.records[k]
	return ok && r.intent == intent && (fp == r.after || (r.beforeRV != "" && rv == r.beforeRV))
}

// known reports whether the cache holds a record of the object.
func (c *appliedCache) known(k appliedKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.records[k]
	return ok
}

func (c *appliedCache) record(k appliedKey, r appliedRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.records == nil {
		c.records = map[appliedKey]appliedRecord{}
	}
	if _, ok := c.records[k]; !ok && len(c.records) >= maxApplied {
		for old := range c.records {
			delete(c.records, old) // any one: map order is arbitrary
			break
		}
	}
	c.records[k] = r
}

func (c *appliedCache) forget(k appliedKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.records, k)
}

func (c *appliedCache) forgetCluster(cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.DeleteFunc(c.records, func(k appliedKey, _ appliedRecord) bool { return k.cluster == cluster })
}

// intent is one object Apply wants in a member: its apply configuration and
// what the skip decision needs of it.
type intent struct {
	kind            string
	namespace, name string
	// config is sent with server-side apply. The client decodes the
	// member's answer into it, so it is spent once applied, and what the
	// skip decision needs of it is copied out first: the labels and
	// annotations we set, and the hash.
	config              runtime.ApplyConfiguration
	labels, annotations map[string]string
	hash                digest
	// byGeneration says the kind's metadata.generation moves on every
	// write that can change what we applied (see fingerprint).
	byGeneration bool
}

func newIntent(kind string, config runtime.ApplyConfiguration, meta *metav1ac.ObjectMetaApplyConfiguration, byGeneration bool) (*intent, error) {
	// encoding/json sorts map keys and follows struct order: equal
	// configurations hash equally.
	b, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("hash %s %s/%s: %w", kind, ptrString(meta.Namespace), ptrString(meta.Name), err)
	}
	return &intent{
		kind: kind, namespace: ptrString(meta.Namespace), name: ptrString(meta.Name),
		config: config, labels: maps.Clone(meta.Labels), annotations: maps.Clone(meta.Annotations),
		hash: digestOf(b), byGeneration: byGeneration,
	}, nil
}

func (in *intent) key(cluster string) appliedKey {
	return appliedKey{cluster: cluster, kind: in.kind, namespace: in.namespace, name: in.name}
}

// object is a key for reads of the member's version of the intent.
func (in *intent) object() client.ObjectKey {
	return client.ObjectKey{Namespace: in.namespace, Name: in.name}
}

// fingerprint identifies the version of a member object, as far as our
// apply is concerned.
//
// A Deployment is fingerprinted by its UID, metadata.generation and the
// values of the labels and annotations we set, not by its resourceVersion:
// the Deployment controller writes status (and its revision annotation)
// through the status subresource at every step of a rollout, and each such
// write would otherwise cost one no-op apply. The apps/v1 strategy bumps the
// generation on every change to spec or annotations through the main
// resource, never through status; labels it does not count, so our labels'
// values are part of the fingerprint, and so are our annotations' (written
// through status they would not bump the generation). Labels and annotations
// others add are not ours to revert and are left out.
//
// A Service has no generation (the core/v1 strategy never sets one), so its
// resourceVersion stands in; only a LoadBalancer's status writes move it,
// one no-op apply each.
//
// The UID makes an object deleted and recreated, or the same name on another
// API server (a cluster re-registered elsewhere), a new version.
func (in *intent) fingerprint(obj client.Object) digest {
	b := []byte(string(obj.GetUID()))
	if in.byGeneration {
		b = strconv.AppendInt(append(b, "\x00g"...), obj.GetGeneration(), 10)
	} else {
		b = append(append(b, "\x00rv"...), obj.GetResourceVersion()...)
	}
	b = appendValues(append(b, "\x00l"...), in.labels, obj.GetLabels())
	b = appendValues(append(b, "\x00a"...), in.annotations, obj.GetAnnotations())
	return digestOf(b)
}

// appendValues appends, for each key we set, whether the object has it and
// its value there, length-prefixed so that no two versions read the same.
func appendValues(b []byte, ours, have map[string]string) []byte {
	for _, k := range slices.Sorted(maps.Keys(ours)) {
		b = append(strconv.AppendInt(append(b, ' '), int64(len(k)), 10), ':')
		b = append(b, k...)
		if v, ok := have[k]; ok {
			b = append(strconv.AppendInt(append(b, '='), int64(len(v)), 10), ':')
			b = append(b, v...)
		}
	}
	return b
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
