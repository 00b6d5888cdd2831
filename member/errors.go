package member

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	hubv1 "example.com/hub-operator/api/v1"
)

// InvalidSpecError reports MyResource input that can never be rendered, such
// as an override selector that does not parse. Retrying cannot fix it: the
// hub should surface it as a condition and wait for the spec to change.
type InvalidSpecError struct {
	// Field is the path of the offending field, e.g. spec.overrides[1].clusterSelector.
	Field string
	// Err says what is wrong with it.
	Err error
}

// Error implements error.
func (e *InvalidSpecError) Error() string {
	return fmt.Sprintf("invalid %s: %v", e.Field, e.Err)
}

// Unwrap returns the underlying error.
func (e *InvalidSpecError) Unwrap() error { return e.Err }

// ConflictError reports a Deployment or Service that already exists in a
// member under the name hub-operator wants and was not created by
// hub-operator. The operator never takes such an object over.
type ConflictError struct {
	// Cluster is the member cluster's name.
	Cluster string
	// Kind is Deployment or Service.
	Kind string
	// Namespace and Name locate the existing object.
	Namespace, Name string
	// Managers are the field managers of the existing object, sorted, so a
	// person can tell who created it.
	Managers []string
}

// Error implements error. The message says what to do, because the hub shows
// it verbatim in the cluster's Applied condition.
func (e *ConflictError) Error() string {
	by := "unknown field managers"
	if len(e.Managers) > 0 {
		by = "field managers: " + strings.Join(e.Managers, ", ")
	}
	return fmt.Sprintf("cluster %s: %s %s/%s exists and is not managed by %s (%s); delete or rename it to let %s create its own",
		e.Cluster, e.Kind, e.Namespace, e.Name, hubv1.ManagedByValue, by, hubv1.ManagedByValue)
}

// ApplyError reports a request to a member API server that failed: the
// server-side apply, or the reads and deletes around it. Its message carries
// the member's own words.
type ApplyError struct {
	// Cluster is the member cluster's name.
	Cluster string
	// Op is what was attempted: apply, get, create, delete.
	Op string
	// Kind, Namespace and Name locate the object (Namespace is empty for a Namespace).
	Kind, Namespace, Name string
	// Err is the error returned by the client.
	Err error
}

// Error implements error. The hub shows it verbatim in the cluster's
// Applied condition, so it ends with what to do when the member's answer
// points at a fix.
func (e *ApplyError) Error() string {
	obj := e.Name
	if e.Namespace != "" {
		obj = e.Namespace + "/" + e.Name
	}
	msg := fmt.Sprintf("cluster %s: %s %s %s: %v", e.Cluster, e.Op, e.Kind, obj, e.Err)
	if h := e.hint(); h != "" {
		msg += "; " + h
	}
	return msg
}

// hint says what a person can do about a refusal from the member, or ""
// when the member's words are all there is to say (or a retry fixes it).
func (e *ApplyError) hint() string {
	msg := e.Message()
	where := "cluster-wide"
	if e.Namespace != "" {
		where = "in namespace " + e.Namespace
	}
	switch {
	case apierrors.IsUnauthorized(e.Err):
		return "the cluster rejects the credentials of its kubeconfig: renew them in the cluster's registry Secret"
	case apierrors.IsForbidden(e.Err) && strings.Contains(msg, "exceeded quota"):
		return "raise the ResourceQuota " + where + " of the cluster, or free what it counts"
	case apierrors.IsForbidden(e.Err) && strings.Contains(msg, "admission webhook"):
		return "an admission webhook in the cluster refused it: change the MyResource to satisfy it, or ask the cluster's owners"
	case apierrors.IsForbidden(e.Err) && strings.Contains(msg, " cannot "):
		verb := e.Op
		if verb == opApply {
			verb = "patch" // server-side apply is authorized as patch
		}
		return fmt.Sprintf("grant the user of the cluster's kubeconfig %s on %ss %s (RBAC)", verb, strings.ToLower(e.Kind), where)
	case apierrors.IsInvalid(e.Err):
		field := "spec"
		switch e.Kind {
		case kindDeployment:
			field = "spec.deployment"
		case kindService:
			field = "spec.service"
		}
		return "the cluster's API server finds the " + e.Kind + " invalid: fix the matching field under " + field + " of the MyResource"
	}
	return ""
}

// Unwrap returns the client's error so apierrors.Is* and errors.Is see through.
func (e *ApplyError) Unwrap() error { return e.Err }

// Message is the member API server's message for the failure, without the
// wrapping, for a condition message.
func (e *ApplyError) Message() string {
	var st apierrors.APIStatus
	if errors.As(e.Err, &st) {
		if m := st.Status().Message; m != "" {
			return m
		}
	}
	return e.Err.Error()
}

// Reason maps an error from this package to the contract's condition reason:
// Conflict for a *ConflictError, ClusterUnreachable when the member could not
// be reached in time, and ApplyFailed for everything else (including an
// *InvalidSpecError). It returns "" for a nil error.
func Reason(err error) string {
	var conflict *ConflictError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &conflict):
		return hubv1.ReasonConflict
	case IsInvalidSpec(err):
		return hubv1.ReasonInvalidSpec
	case IsUnreachable(err):
		return hubv1.ReasonClusterUnreachable
	default:
		return hubv1.ReasonApplyFailed
	}
}

// IsUnreachable reports whether err means the member API server could not be
// reached or did not answer in time, as opposed to answering with a refusal.
// Such errors are transient by nature and never a reason to delete anything.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsServiceUnavailable(err) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	// A *url.Error is a net.Error too, so this also covers a connection that
	// dropped mid-request (EOF) and TLS handshake failures.
	var netErr net.Error
	return errors.As(err, &netErr)
}

// IsInvalidSpec reports whether err is (or wraps) an *InvalidSpecError, i.e.
// a permanent failure that only a spec change can fix.
func IsInvalidSpec(err error) bool {
	var inv *InvalidSpecError
	return errors.As(err, &inv)
}
