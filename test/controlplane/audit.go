package controlplane

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
)

// OperatorUser is the identity the operator gets on every cluster
// (Cluster.OperatorKubeconfig). The API servers audit its requests, and only
// its, so tests can count exactly what the operator did.
const OperatorUser = "hub-operator"

// auditPolicy logs the operator's requests at Metadata level, once each.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: ["` + OperatorUser + `"]
- level: None
`

// AuditEvent is one audited request of the operator.
type AuditEvent struct {
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// IsWrite says whether the request could change state.
func (e AuditEvent) IsWrite() bool {
	switch e.Verb {
	case "create", "update", "patch", "delete", "deletecollection", "apply":
		return true
	}
	return false
}

// Refused says the API server answered the request with an error: a
// refused write changed nothing.
func (e AuditEvent) Refused() bool {
	return e.ResponseStatus != nil && e.ResponseStatus.Code >= 400
}

// Resource is the request's resource (with subresource), e.g. "deployments" or "myresources/status".
func (e AuditEvent) Resource() string {
	if e.ObjectRef == nil {
		return ""
	}
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

func writeAuditPolicy(dir string) (string, error) {
	p := filepath.Join(dir, "audit-policy.yaml")
	return p, os.WriteFile(p, []byte(auditPolicy), 0o600)
}

// AuditEvents returns every request the operator identity made to this
// cluster's API server so far.
func (c *Cluster) AuditEvents() ([]AuditEvent, error) {
	f, err := os.Open(filepath.Join(c.Dir, "audit.log"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err == nil {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}
