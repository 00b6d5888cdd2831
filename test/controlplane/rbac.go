package controlplane

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Grant gives user the rules on this cluster under a role named name: a
// ClusterRole and ClusterRoleBinding when namespace is empty, else a Role
// and RoleBinding in namespace. It replaces the rules of an existing role of
// that name, so callers can grant again with other rules. It exists so that
// an identity outside system:masters (which API Priority and Fairness
// exempts from queuing) can be given exactly what a component needs.
func (c *Cluster) Grant(ctx context.Context, namespace, name, user string, rules []rbacv1.PolicyRule) error {
	meta := metav1.ObjectMeta{Name: name, Namespace: namespace}
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	var role, binding client.Object
	if namespace == "" {
		role = &rbacv1.ClusterRole{ObjectMeta: meta, Rules: rules}
		binding = &rbacv1.ClusterRoleBinding{ObjectMeta: meta, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}
	} else {
		role = &rbacv1.Role{ObjectMeta: meta, Rules: rules}
		binding = &rbacv1.RoleBinding{ObjectMeta: meta, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}}
	}
	for _, obj := range []client.Object{role, binding} {
		if err := c.createOrReplace(ctx, obj); err != nil {
			return fmt.Errorf("cluster %s: granting %s to %s: %w", c.Name, name, user, err)
		}
	}
	return nil
}

// createOrReplace creates obj, or overwrites an existing one of that name
// with obj's content.
func (c *Cluster) createOrReplace(ctx context.Context, obj client.Object) error {
	err := c.Client.Create(ctx, obj)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur := obj.DeepCopyObject().(client.Object)
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
		return err
	}
	obj.SetResourceVersion(cur.GetResourceVersion())
	return c.Client.Update(ctx, obj)
}
