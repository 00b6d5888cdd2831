package member

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// applyPayload turns a rendered object into the body of a server-side apply:
// its map form without status and without nulls. A null would tell the
// server to drop the field (creationTimestamp: null is what every typed object
// serializes to), and status is not ours to write.
func applyPayload(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T %s to unstructured: %w", obj, obj.GetName(), err)
	}
	delete(m, "status")
	pruneNulls(m)
	return &unstructured.Unstructured{Object: m}, nil
}

func pruneNulls(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(v)
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					pruneNulls(em)
				}
			}
		}
	}
}

// inSync reports whether observed needs no write to match desired: its
// spec-hash annotation equals the desired one (nothing changed on the hub)
// AND no field the operator sets was changed in the member. The second half
// returns the path of the first difference, for the log.
func inSync(desired, observed client.Object) (bool, string, error) {
	if observed.GetAnnotations()[hubv1.SpecHashAnnotation] != desired.GetAnnotations()[hubv1.SpecHashAnnotation] {
		return false, "metadata.annotations." + hubv1.SpecHashAnnotation, nil
	}
	want, err := applyPayload(desired)
	if err != nil {
		return false, "", err
	}
	have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(observed)
	if err != nil {
		return false, "", fmt.Errorf("convert observed %T %s to unstructured: %w", observed, observed.GetName(), err)
	}
	// Typed objects read through client-go carry no apiVersion and kind.
	delete(want.Object, "apiVersion")
	delete(want.Object, "kind")
	if path := drift(want.Object, have, ""); path != "" {
		return false, path, nil
	}
	return true, "", nil
}

// drift returns "" when desired is a subset of observed: every map key of
// desired is present in observed with a value that is itself a subset, lists
// have the same length and are subsets element by element, and scalars are
// equal. Fields only the server sets (defaults, status, metadata it owns)
// are absent from desired and so never count. Otherwise it returns the path
// of the first difference.
//
// Lists must have equal length so that an item added to an atomic list in
// the member (an extra arg) is reverted. An item another manager adds to a
// keyed list (a sidecar container) is not removed by our apply either, so
// that object is re-applied on each reconcile without change; it is a no-op
// for the API server and rare enough not to special-case.
func drift(desired, observed any, path string) string {
	switch d := desired.(type) {
	case map[string]any:
		o, ok := observed.(map[string]any)
		if !ok {
			return orRoot(path)
		}
		// Sorted, so the reported path is the same on every run.
		for _, k := range slices.Sorted(maps.Keys(d)) {
			dv := d[k]
			p := k
			if path != "" {
				p = path + "." + k
			}
			ov, ok := o[k]
			if !ok {
				return p
			}
			if diff := drift(dv, ov, p); diff != "" {
				return diff
			}
		}
		return ""
	case []any:
		o, ok := observed.([]any)
		if !ok || len(o) != len(d) {
			return orRoot(path)
		}
		for i := range d {
			if diff := drift(d[i], o[i], path+"["+strconv.Itoa(i)+"]"); diff != "" {
				return diff
			}
		}
		return ""
	default:
		if dn, ok := number(desired); ok {
			if on, ok := number(observed); ok && dn == on {
				return ""
			}
			return orRoot(path)
		}
		if reflect.DeepEqual(desired, observed) {
			return ""
		}
		return orRoot(path)
	}
}

func orRoot(path string) string {
	if path == "" {
		return "."
	}
	return path
}

// number normalizes the numeric types unstructured maps hold (int64 from the
// converter, float64 or int from other decoders) for comparison.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	case float32:
		return float64(n), true
	default:
		return 0, false
	}
}
