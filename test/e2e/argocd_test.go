package e2e

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"example.com/hub-operator/test/controlplane"
)

// argoCDDir holds the Argo CD health check users install.
var argoCDDir = filepath.Join(controlplane.RepoRoot(), "docs", "integrations", "argocd")

// argoHealth runs the shipped health check the way Argo CD does: in
// gopher-lua (the engine Argo CD embeds), with the resource as the global
// obj, returning the table's status and message.
func argoHealth(g Gomega, obj map[string]any) (status, message string) {
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	g.Expect(L.DoFile(filepath.Join(argoCDDir, "health.lua"))).To(Succeed())
	hs, ok := L.Get(-1).(*lua.LTable)
	g.Expect(ok).To(BeTrue(), "the script returns a table")
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

// toLua converts a decoded JSON object as Argo CD hands it to the script.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	default:
		return lua.LNil
	}
}

// TestArgoCDConfigMapCarriesTheScript: the argocd-cm snippet users apply
// holds exactly the script the tests run.
func TestArgoCDConfigMapCarriesTheScript(t *testing.T) {
	g := NewWithT(t)
	script, err := os.ReadFile(filepath.Join(argoCDDir, "health.lua"))
	g.Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(filepath.Join(argoCDDir, "argocd-cm.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var cm corev1.ConfigMap
	g.Expect(yaml.Unmarshal(raw, &cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue("resource.customizations.health.example.com_MyResource", string(script)))
}
